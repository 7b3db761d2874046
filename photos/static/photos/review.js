// The admin's one-photo review page: box toggles and keyboard shortcuts.
(function () {
  "use strict";
  var items = Array.prototype.slice.call(document.querySelectorAll("#labels li[data-label-id]"));
  var script = document.getElementById("review-script");
  var focus = Math.min(parseInt(script.dataset.focus || "0", 10) || 0, Math.max(items.length - 1, 0));

  function show(index) {
    if (!items.length) return;
    focus = (index + items.length) % items.length;
    items.forEach(function (li, i) { li.classList.toggle("focused", i === focus); });
    items[focus].focus({ preventScroll: false });
  }

  function press(action) {
    var li = items[focus];
    if (!li) return;
    var button = li.querySelector("button." + action);
    if (button) button.click();
  }

  document.querySelectorAll("#toggles input[data-toggle]").forEach(function (box) {
    box.addEventListener("change", function () {
      document.querySelectorAll("#stage g.box, #stage .caption").forEach(function (el) {
        if (el.dataset.label === box.dataset.toggle) el.classList.toggle("hidden", !box.checked);
      });
    });
  });

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA")) {
      if (event.key === "Escape") target.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var link;
    switch (event.key) {
      case "ArrowDown": case "s": show(focus + 1); break;
      case "ArrowUp": case "w": show(focus - 1); break;
      case "a": press("approve"); break;
      case "r": press("reject"); break;
      case "e":
        var input = items[focus] && items[focus].querySelector(".rename-form input[name=name]");
        if (input) input.focus();
        break;
      case "+":
        var add = document.getElementById("add-name");
        if (add) add.focus();
        break;
      case "n": case "ArrowRight": link = document.getElementById("next"); break;
      case "p": case "ArrowLeft": link = document.getElementById("previous"); break;
      default: return;
    }
    event.preventDefault();
    if (link) window.location.href = link.href;
  });

  show(focus);

  // A video: each sampled moment's boxes, drawn while that moment plays (not over the
  // poster, another moment's frame); the toggles above hide a label's boxes as for a photo.
  var data = document.getElementById("video-boxes");
  var player = document.getElementById("preview");
  var svg = document.querySelector("#stage svg");
  if (data && player && svg) {
    var ns = "http://www.w3.org/2000/svg";
    var stage = document.getElementById("stage");
    var started = false;
    var moments = JSON.parse(data.textContent).map(function (b) {
      var g = document.createElementNS(ns, "g");
      g.setAttribute("class", "box off-time");
      g.dataset.label = b.label;
      var rect = document.createElementNS(ns, "rect");
      rect.setAttribute("class", "kind-label");
      rect.setAttribute("x", b.box.left);
      rect.setAttribute("y", b.box.top);
      rect.setAttribute("width", b.box.width);
      rect.setAttribute("height", b.box.height);
      g.appendChild(rect);
      svg.appendChild(g);
      var caption = document.createElement("span");
      caption.className = "caption off-time";
      caption.dataset.label = b.label;
      caption.textContent = b.label;
      caption.style.left = (b.box.left * 100) + "%";
      caption.style.top = (b.box.top * 100) + "%";
      stage.appendChild(caption);
      return { t: b.t, until: b.until, els: [g, caption] };
    });
    var draw = function () {
      var ms = player.currentTime * 1000;
      var count = 0;
      moments.forEach(function (m) {
        var on = started && m.t <= ms && ms < m.until;
        if (on) count += 1;
        m.els.forEach(function (el) { el.classList.toggle("off-time", !on); });
      });
      stage.dataset.boxesShown = String(count);
    };
    ["play", "seeked"].forEach(function (name) {
      player.addEventListener(name, function () { started = true; draw(); });
    });
    player.addEventListener("timeupdate", draw);
    draw();
  }
})();
