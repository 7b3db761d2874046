// Blurred previews (moderation) are revealed on click; no inline handlers, for the CSP.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target && target.classList && target.classList.contains("blurred")) {
      target.classList.remove("blurred");
      target.classList.add("revealed");
    }
    // A video's flagged moment: the preview seeks there (still blurred until clicked).
    var preview = document.getElementById("preview");
    if (target && target.dataset && target.dataset.seek !== undefined && preview && preview.tagName === "VIDEO") {
      preview.currentTime = Number(target.dataset.seek) / 1000;
    }
  });
})();
