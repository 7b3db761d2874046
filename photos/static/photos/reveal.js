// Blurred previews (moderation) are revealed on click; no inline handlers, for the CSP.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target && target.classList && target.classList.contains("blurred")) {
      target.classList.remove("blurred");
      target.classList.add("revealed");
    }
  });
})();
