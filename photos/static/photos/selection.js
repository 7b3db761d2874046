// Multi-select on My photos and in the trash: a count of what is selected, "select all
// on this page", and the action buttons enabled only with a selection. Without this
// script the checkboxes and buttons still work (the server checks the selection).
(function () {
  "use strict";
  const form = document.getElementById("selection");
  if (!form) return;
  const all = document.getElementById("select-all");
  const count = document.getElementById("selected-count");
  const boxes = () => Array.from(form.querySelectorAll("input[name=ids]"));

  function refresh() {
    const n = boxes().filter((b) => b.checked).length;
    if (count) count.textContent = n ? `${n} selected` : "";
    for (const button of form.querySelectorAll(".toolbar button[name=action]")) button.disabled = n === 0;
    if (all) all.checked = n > 0 && n === boxes().length;
    for (const box of boxes()) box.closest(".photo").classList.toggle("selected", box.checked);
  }
  form.addEventListener("change", (event) => {
    if (event.target === all) for (const box of boxes()) box.checked = all.checked;
    refresh();
  });
  document.addEventListener("photos:added", () => {
    const toolbar = form.querySelector(".toolbar");
    if (toolbar) toolbar.hidden = false;
    refresh();
  });
  refresh();
})();
