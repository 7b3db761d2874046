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
