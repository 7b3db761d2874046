// The owner's photo page: show a label's boxes on the image (a toggle per label, and one
// for every box). The boxes are in the page already, positioned in percent of the image.
(function () {
  "use strict";
  const boxes = Array.from(document.querySelectorAll(".frame .box"));
  const toggles = Array.from(document.querySelectorAll("button.toggle[data-label]"));
  const all = document.getElementById("all-boxes");

  function refresh() {
    const shown = new Set(toggles.filter((t) => t.getAttribute("aria-pressed") === "true").map((t) => t.dataset.label));
    for (const box of boxes) box.hidden = !(all && all.checked) && !shown.has(box.dataset.label);
  }
  for (const toggle of toggles) {
    toggle.addEventListener("click", () => {
      toggle.setAttribute("aria-pressed", toggle.getAttribute("aria-pressed") === "true" ? "false" : "true");
      refresh();
    });
  }
  if (all) all.addEventListener("change", refresh);

  // A video's labels: each time it is seen is a button that plays from there.
  const player = document.getElementById("photo-video");
  for (const seek of document.querySelectorAll("button.seek[data-seek]")) {
    seek.addEventListener("click", () => {
      if (!player) return;
      player.currentTime = Number(seek.dataset.seek) / 1000;
      player.play().catch(() => {}); // a browser may refuse autoplay with sound; the seek stands
    });
  }
})();

// A video's boxes: each sampled frame's boxes are drawn while that moment plays (from the
// frame's time until the next sampled frame's), over the player, in percent of the frame.
(function () {
  "use strict";
  const player = document.getElementById("photo-video");
  const data = document.getElementById("video-boxes");
  const shown = document.getElementById("video-boxes-shown");
  if (!player || !data) return;
  const frame = player.parentElement;
  const moments = JSON.parse(data.textContent).map((b) => {
    const box = document.createElement("div");
    box.className = "box video-box";
    box.hidden = true;
    box.dataset.label = b.label;
    const pct = (v) => `${Math.min(100, Math.max(0, Number(v) * 100 || 0))}%`; // ratios of the frame, clamped
    box.style.left = pct(b.box.left);
    box.style.top = pct(b.box.top);
    box.style.width = pct(b.box.width);
    box.style.height = pct(b.box.height);
    const name = document.createElement("span");
    name.textContent = b.label;
    box.appendChild(name);
    frame.appendChild(box);
    return { t: b.t, until: b.until, box: box };
  });

  // Not over the poster: it is the sharpest frame of some other moment. From the first
  // play or seek on, the boxes follow the frame shown.
  let started = false;
  function draw() {
    const ms = player.currentTime * 1000;
    const on = started && (!shown || shown.checked);
    let count = 0;
    for (const m of moments) {
      m.box.hidden = !(on && m.t <= ms && ms < m.until);
      if (!m.box.hidden) count += 1;
    }
    frame.dataset.boxesAt = String(Math.round(ms));
    frame.dataset.boxesShown = String(count);
  }
  for (const event of ["play", "seeked"]) player.addEventListener(event, () => { started = true; draw(); });
  player.addEventListener("timeupdate", draw);
  if (shown) shown.addEventListener("change", draw);
  draw();
})();
