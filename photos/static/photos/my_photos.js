// Live status on "My photos": poll while any photo is still being analysed, and
// update its card in place (no full reload).
(function () {
  "use strict";
  var list = document.getElementById("photo-list");
  if (!list) return;
  var url = list.dataset.statusUrl;
  var delay = 1000;
  // Give up after ~10 minutes: the sweeper retries stuck photos, a reload shows them.
  var pollsLeft = 600;
  var running = false;

  function pendingIds() {
    return Array.prototype.map.call(list.querySelectorAll('.photo[data-pending="1"]'), function (li) {
      return li.dataset.id;
    });
  }

  function text(tag, className, value) {
    var el = document.createElement(tag);
    if (className) el.className = className;
    el.textContent = value;
    return el;
  }

  function render(li, photo) {
    var status = li.querySelector(".status");
    status.className = "status status-" + photo.status;
    status.textContent = photo.status_display + (photo.status_reason ? ": " + photo.status_reason : "");
    var labels = li.querySelector(".labels");
    labels.replaceChildren();
    photo.labels.forEach(function (label) {
      var chip = text("li", "chip", label.name + " ");
      if (label.percent !== null) chip.appendChild(text("small", "", label.percent + "%"));
      labels.appendChild(chip);
    });
    if (photo.thumbnail && !li.querySelector(".thumb img")) {
      var img = document.createElement("img");
      img.src = photo.thumbnail;
      img.alt = photo.filename;
      li.querySelector(".thumb").appendChild(img);
    }
    li.dataset.pending = photo.pending ? "1" : "0";
    li.dataset.thumbPending = photo.thumbnail_pending ? "1" : "0";
  }

  function poll() {
    var ids = pendingIds().concat(
      Array.prototype.map.call(list.querySelectorAll('.photo[data-thumb-pending="1"]'), function (li) { return li.dataset.id; })
    );
    if (!ids.length || pollsLeft-- <= 0) {
      running = false;
      return;
    }
    running = true;
    fetch(url + "?ids=" + encodeURIComponent(ids.join(",")), { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : { photos: [] }; })
      .then(function (data) {
        data.photos.forEach(function (photo) {
          var li = list.querySelector('.photo[data-id="' + photo.id + '"]');
          if (li) render(li, photo);
        });
      })
      .catch(function () { delay = Math.min(delay * 2, 15000); })
      .finally(function () { setTimeout(poll, delay); });
  }

  Array.prototype.forEach.call(list.querySelectorAll('.photo[data-pending="1"]'), function (li) {
    li.dataset.thumbPending = "1";
  });
  Array.prototype.forEach.call(list.querySelectorAll(".photo"), function (li) {
    if (!li.querySelector(".thumb img")) li.dataset.thumbPending = "1";
  });
  // New cards from drag-and-drop uploads restart the polling if it had stopped.
  document.addEventListener("photos:added", function () {
    pollsLeft = 600;
    if (!running) poll();
  });
  running = true;
  setTimeout(poll, 500);
})();
