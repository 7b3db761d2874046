"""Steps the browser tests share."""

from __future__ import annotations

import base64

from playwright.sync_api import expect

from tests.samples import PHOTOS



def sign_up(page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/accounts/signup/")
    page.fill("input[name=username]", username)
    page.fill("input[name=email]", f"{username}@example.com")
    page.fill("input[name=password1]", password)
    page.fill("input[name=password2]", password)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base_url}/photos/")


def choose_files(page, *names: str) -> None:
    """Choose photos in My photos' upload form, once its script runs (they go up at once)."""
    expect(page.locator("#upload-form.js")).to_be_visible()
    page.set_input_files("input[name=photos]", [str(PHOTOS[n]) for n in names])


def log_in(page, login_url: str, username: str, password: str) -> None:
    """Through the site's (/accounts/login/) or the admin's (/admin/login/) form."""
    page.goto(login_url)
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("[type=submit]")


# Drops files on the upload form as a user's drag and drop would (a DataTransfer of Files).
DROP = """
async ([files]) => {
  const transfer = new DataTransfer();
  for (const f of files) {
    const bytes = Uint8Array.from(atob(f.data), c => c.charCodeAt(0));
    transfer.items.add(new File([bytes], f.name, { type: f.type }));
  }
  const zone = document.getElementById("upload-form");
  for (const type of ["dragenter", "dragover", "drop"]) {
    zone.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
  }
}
"""


def dropped(*names):
    files = []
    for name in names:
        path = PHOTOS[name]
        files.append({"name": path.name, "type": "image/png" if path.suffix == ".png" else "image/jpeg",
                      "data": base64.b64encode(path.read_bytes()).decode()})
    return files
