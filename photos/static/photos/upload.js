// "My photos" uploads: one form. Without JavaScript it posts the chosen files. With it,
// files chosen or dropped on the form go up at once, one request per file, each with its
// own progress bar and result, plus one line for the whole batch (count, bytes, time
// left); accepted photos join the list and update live (my_photos.js).
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) return;
  var zone = form;
  var input = form.querySelector("input[type=file]");
  var progressList = document.getElementById("upload-progress");
  var summary = document.getElementById("upload-summary");
  var list = document.getElementById("photo-list");
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var publicBox = form.querySelector("input[name=public]");
  form.querySelector("button.no-js").hidden = true;
  form.querySelector(".when-js").hidden = false;
  form.classList.add("js");

  // The batch: files still going, bytes sent of the total, time since the first started.
  // A video's upload can also end paused (resumable: a button on its row) or cancelled.
  function newBatch() {
    return { total: 0, finished: 0, accepted: 0, paused: 0, cancelled: 0, sent: {}, sizes: {}, started: Date.now(), next: 0 };
  }
  var batch = newBatch();

  // On a search's results new photos are not added to the list (they may not match it):
  // the summary says where they are.
  var searching = (new URLSearchParams(window.location.search).get("q") || "").trim() !== "";

  function mb(bytes) { return (bytes / 1048576).toFixed(1); }

  function report() {
    var size = 0, sent = 0;
    Object.keys(batch.sizes).forEach(function (k) { size += batch.sizes[k]; sent += batch.sent[k] || 0; });
    summary.hidden = false;
    if (batch.finished === batch.total) {
      var refused = batch.total - batch.accepted - batch.paused - batch.cancelled;
      summary.textContent = batch.accepted + " of " + batch.total + " file" + (batch.total === 1 ? "" : "s") +
        " uploaded" + (refused ? ", " + refused + " refused (see below)" : "") +
        (batch.paused ? ", " + batch.paused + " paused (resume below)" : "") +
        (batch.cancelled ? ", " + batch.cancelled + " cancelled" : "") + "." +
        (searching && batch.accepted ? " They are in All my photos, not in this search." : "");
      return;
    }
    var elapsed = (Date.now() - batch.started) / 1000;
    var left = sent > 0 && elapsed > 1 ? Math.max(1, Math.round(((size - sent) * elapsed) / sent)) : null;
    summary.textContent = "Uploading " + (batch.total - batch.finished) + " of " + batch.total + " file" +
      (batch.total === 1 ? "" : "s") + " · " + mb(sent) + " of " + mb(size) + " MB" +
      (left !== null ? " · about " + left + " s left" : "");
  }

  function track(file) {
    if (batch.finished === batch.total) batch = newBatch();
    var mine = batch, id = batch.next++, ended = null;
    batch.total += 1;
    batch.sizes[id] = file.size;
    report();
    return {
      progress: function (loaded) { mine.sent[id] = loaded; report(); },
      // Bytes that were in storage before this upload began (a resumed video): they count
      // neither as sent nor as left, so the time left is this upload's own.
      already: function (bytes) { mine.sizes[id] = Math.max(0, file.size - bytes); report(); },
      // how: "accepted", "refused", "paused" (resumable) or "cancelled"
      finish: function (how) {
        if (ended) return;
        ended = how;
        mine.sent[id] = mine.sizes[id];
        mine.finished += 1;
        if (how === "accepted") mine.accepted += 1;
        if (how === "paused") mine.paused += 1;
        if (how === "cancelled") mine.cancelled += 1;
        report();
      },
      // A paused upload going again: in its batch if that is still the page's, else in a new one.
      resume: function () {
        if (ended !== "paused") return this;
        if (mine !== batch) return track(file);
        ended = null;
        mine.finished -= 1;
        mine.paused -= 1;
        report();
        return this;
      },
    };
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function addCard(photo) {
    if (searching) return;
    var empty = list.querySelector(".empty");
    if (empty) empty.remove();
    var li = el("li", "photo");
    li.dataset.id = photo.id;
    li.dataset.pending = photo.pending ? "1" : "0";
    li.dataset.thumbPending = "1";
    var select = el("label", "select");
    var box = el("input");
    box.type = "checkbox";
    box.name = "ids";
    box.value = photo.id;
    select.appendChild(box);
    select.appendChild(el("span", "visually-hidden", "Select " + photo.filename));
    li.appendChild(select);
    var thumb = el("a", "thumb");
    thumb.href = photo.url;
    thumb.tabIndex = -1;
    if (photo.kind === "video") thumb.appendChild(el("span", "video-badge", "\u25b6 " + photo.duration));
    li.appendChild(thumb);
    var meta = el("div", "meta");
    var name = el("a", "filename", photo.filename);
    name.href = photo.url;
    meta.appendChild(name);
    meta.appendChild(el("div", "status status-" + photo.status, photo.status_display));
    if (photo.visibility === "public") meta.appendChild(el("div", "visibility", "Public"));
    var remove = el("a", "link danger", "Move to trash…");
    remove.href = photo.delete_url;
    meta.appendChild(remove);
    meta.appendChild(el("ul", "labels"));
    li.appendChild(meta);
    // The timeline's month headings: new photos go under their own, at the top.
    var heading = document.getElementById("just-uploaded");
    if (!heading && list.querySelector(".month")) {
      heading = el("li", "month");
      heading.id = "just-uploaded";
      heading.appendChild(el("h2", "", "Just uploaded"));
      list.insertBefore(heading, list.firstChild);
    }
    list.insertBefore(li, heading ? heading.nextSibling : list.firstChild);
    document.dispatchEvent(new CustomEvent("photos:added"));
  }

  function upload(file) {
    var row = el("li");
    var name = el("span", "", file.name);
    var bar = el("progress");
    bar.max = 100;
    bar.value = 0;
    row.appendChild(name);
    row.appendChild(bar);
    progressList.appendChild(row);

    var tracker = track(file);
    var data = new FormData();
    data.append("photos", file, file.name);
    if (publicBox.checked) data.append("public", "on");
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action || window.location.pathname);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRFToken", csrf);
    xhr.upload.onprogress = function (event) {
      if (event.lengthComputable) {
        bar.value = Math.round((event.loaded / event.total) * 100);
        tracker.progress(Math.min(file.size, event.loaded));
      }
    };
    xhr.onload = function () {
      var body = {};
      try { body = JSON.parse(xhr.responseText); } catch (e) { body = {}; }
      bar.value = 100;
      if (body.accepted && body.accepted.length) {
        row.appendChild(el("span", "done", "uploaded"));
        body.accepted.forEach(addCard);
      }
      (body.rejected || []).forEach(function (r) { row.appendChild(el("span", "error", r.error)); });
      if (/\/accounts\/login\//.test(xhr.responseURL || "")) {
        row.appendChild(el("span", "error", file.name + ": your session has ended: log in again, then upload it again."));
      } else if (xhr.status >= 400 && !(body.rejected || []).length) {
        row.appendChild(el("span", "error", file.name + " could not be uploaded (" + xhr.status + ")."));
      }
      row.dataset.result = body.accepted && body.accepted.length ? "accepted" : "rejected";
      if (row.dataset.result === "rejected") row.insertBefore(el("span", "refused", "refused"), bar.nextSibling);
      tracker.finish(row.dataset.result);
    };
    xhr.onerror = function () {
      row.appendChild(el("span", "error", file.name + ": network error, nothing was stored."));
      row.dataset.result = "rejected";
      row.insertBefore(el("span", "refused", "not stored"), bar.nextSibling);
      tracker.finish("refused");
    };
    xhr.send(data);
  }

  // S3 storage: the browser sends the file straight to the bucket with a presigned POST
  // (S3 enforces size and type), then asks the app to check it and create the photo.
  function json(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body),
    }).then(function (r) {
      // A session that ended is sent to the login page (HTML): say so, not "invalid JSON".
      if (!/application\/json/.test(r.headers.get("Content-Type") || "")) {
        var ended = r.redirected && /\/accounts\/login\//.test(r.url);
        var error = ended ? "your session has ended: log in again (in another tab), then choose the file again"
          : r.status === 403 ? "this page has expired: reload it, then choose the file again"
          : "the server answered " + r.status + "; try again";
        return { status: ended ? 401 : r.status, data: { error: error, rejected: [{ error: error }] } };
      }
      return r.json().then(function (data) { return { status: r.status, data: data }; });
    });
  }

  function uploadDirect(file) {
    var row = el("li");
    var bar = el("progress");
    bar.max = 100;
    bar.value = 0;
    row.appendChild(el("span", "", file.name));
    row.appendChild(bar);
    progressList.appendChild(row);
    var tracker = track(file);
    function fail(message) {
      row.appendChild(el("span", "error", message));
      if (!row.dataset.result) {
        row.insertBefore(el("span", "refused", "refused"), bar.nextSibling);
        tracker.finish("refused");
      }
      row.dataset.result = "rejected";
    }
    json(zone.dataset.direct, { filename: file.name, content_type: file.type, size: file.size }).then(function (res) {
      if (res.status !== 200) return fail(file.name + ": " + (res.data.error || "refused"));
      var data = new FormData();
      Object.keys(res.data.fields).forEach(function (k) { data.append(k, res.data.fields[k]); });
      data.append("file", file);
      var xhr = new XMLHttpRequest();
      xhr.open("POST", res.data.url);
      xhr.upload.onprogress = function (event) {
        if (event.lengthComputable) {
          bar.value = Math.round((event.loaded / event.total) * 100);
          tracker.progress(Math.min(file.size, event.loaded));
        }
      };
      xhr.onerror = function () { fail(file.name + ": the upload to storage failed, nothing was stored."); };
      xhr.onload = function () {
        if (xhr.status >= 300) return fail(file.name + ": storage refused the file (" + xhr.status + ").");
        json(zone.dataset.confirm, { token: res.data.token, public: publicBox.checked }).then(function (done) {
          (done.data.rejected || []).forEach(function (r) { fail(r.error); });
          if (done.data.accepted && done.data.accepted.length) {
            row.appendChild(el("span", "done", "uploaded"));
            row.dataset.result = "accepted";
            tracker.finish("accepted");
            done.data.accepted.forEach(addCard);
          }
        });
      };
      xhr.send(data);
    }).catch(function () { fail(file.name + ": network error, nothing was stored."); });
  }

  // A video goes to the bucket in parts (S3 multipart: no 5 GB cap, and resumable). Three
  // parts travel at once; a part that fails is sent again (up to 5 times, waiting longer
  // each time). The upload's token is kept in this browser for 20 hours (the server takes
  // parts for 24 and the confirmation for 36): choosing the same
  // file again after a reload or a lost connection sends only the parts S3 does not have.
  var RESUME_PREFIX = "mediaapp-upload:";
  var PARALLEL = 3;
  var TRIES = 5;

  function resumeKey(file) { return RESUME_PREFIX + [file.name, file.size, file.lastModified].join(":"); }

  function remembered(file) {
    try {
      var saved = JSON.parse(window.localStorage.getItem(resumeKey(file)) || "null");
      return saved && saved.until > Date.now() ? saved : null;
    } catch (e) { return null; }
  }

  function remember(file, start) {
    try {
      window.localStorage.setItem(resumeKey(file), JSON.stringify({
        token: start.token, multipart: start.multipart, until: Date.now() + 20 * 3600 * 1000 }));
    } catch (e) { /* private mode: the upload still works, it just cannot resume after a reload */ }
  }

  function forget(file) {
    try { window.localStorage.removeItem(resumeKey(file)); } catch (e) { /* nothing kept */ }
  }

  // This page's video uploads by file (name, size, date): the same file chosen again while
  // it goes is not sent twice, and one that paused is resumed by choosing it again.
  var active = {};

  function uploadVideo(file) {
    var key = resumeKey(file);
    if (active[key]) return active[key].chosenAgain();
    var row = el("li");
    row.className = "video-upload";
    var bar = el("progress");
    bar.max = 100;
    bar.value = 0;
    var side = el("span", "side");
    var state = el("span", "part-state");
    var cancel = el("button", "link", "Cancel");
    cancel.type = "button";
    side.appendChild(state);
    side.appendChild(cancel);
    row.appendChild(el("span", "", file.name));
    row.appendChild(bar);
    row.appendChild(side);
    progressList.appendChild(row);
    var tracker = track(file);
    var start = null, done = {}, loading = {}, pending = [], urls = {}, stopped = false, failed = false;
    var sending = {};  // the part requests in flight, so Cancel stops them
    var before = null;  // bytes in storage when this try began (a resumed upload)
    var note = null, retry = null;

    function finish(how, message) {
      if (row.dataset.result) return;  // once per file (a late answer after Cancel changes nothing)
      delete active[key];
      state.textContent = "";
      if (note) note.remove();
      if (retry) retry.remove();
      cancel.remove();
      if (how === "accepted") side.appendChild(el("span", "done", message));
      else {
        side.appendChild(el("span", "refused", how === "cancelled" ? "cancelled" : "refused"));
        if (message) row.appendChild(el("span", "error", message));
      }
      row.dataset.result = how === "accepted" ? "accepted" : how === "cancelled" ? "cancelled" : "rejected";
      tracker.finish(how);
    }

    function progress() {
      var sent = 0;
      Object.keys(done).forEach(function (n) { sent += done[n]; });
      Object.keys(loading).forEach(function (n) { sent += loading[n]; });
      sent = Math.min(file.size, sent);
      bar.value = file.size ? Math.round((sent / file.size) * 100) : 100;
      if (before !== null) tracker.progress(Math.max(0, sent - before));
    }

    function slice(n) {
      var each = start.multipart.part_size;
      return file.slice((n - 1) * each, Math.min(file.size, n * each));
    }

    // What S3 already has, and URLs for the parts asked for.
    function askParts(numbers) {
      return json(zone.dataset.parts, { token: start.token, parts: numbers }).then(function (res) {
        if (res.status !== 200) {
          var error = new Error(res.data.error || "refused (" + res.status + ")");
          error.final = res.status === 400;  // the upload is over (finished, expired, not this user's)
          throw error;
        }
        res.data.uploaded.forEach(function (p) { done[p.part] = p.size; });
        Object.keys(res.data.urls).forEach(function (n) { urls[n] = res.data.urls[n]; });
        return res.data;
      });
    }

    function put(n, tries) {
      return new Promise(function (resolve, reject) {
        var xhr = new XMLHttpRequest();
        sending[n] = xhr;
        xhr.open("PUT", urls[n]);
        xhr.upload.onprogress = function (event) { loading[n] = event.loaded; progress(); };
        xhr.onload = function () {
          delete loading[n];
          delete sending[n];
          if (xhr.status >= 200 && xhr.status < 300) { done[n] = slice(n).size; progress(); resolve(); }
          else reject(xhr.status);
        };
        xhr.onerror = xhr.onabort = function () { delete loading[n]; delete sending[n]; progress(); reject(0); };
        xhr.send(slice(n));
      }).catch(function () {
        if (stopped) return Promise.reject(new Error("cancelled"));
        if (tries + 1 >= TRIES) return Promise.reject(new Error("part " + n + " did not get through"));
        state.textContent = "connection trouble, trying part " + n + " again…";
        return new Promise(function (r) { setTimeout(r, 1000 * Math.pow(2, tries)); }).then(function () {
          // A fresh URL each time: the last may have expired (a sleeping laptop, or the
          // credentials that signed it), and S3's refusal may reach the page as no answer.
          delete urls[n];
          return askParts([n]).then(function () { return put(n, tries + 1); });
        });
      });
    }

    function worker() {
      if (stopped || failed || !pending.length) return Promise.resolve();
      var n = pending.shift();
      var ready = urls[n] ? Promise.resolve() : askParts(pending.slice(0, 19).concat([n]).filter(function (k) { return !urls[k]; }));
      return ready.then(function () { return done[n] ? null : put(n, 0); }).then(function () {
        state.textContent = "";
        return worker();
      });
    }

    function pause(err) {
      // The parts that arrived are kept: Resume (or choosing the file again, or the
      // connection coming back) sends the rest.
      failed = true;
      state.textContent = "paused";
      cancel.hidden = false;
      note = el("span", "error", file.name + ": " + err.message + ". The parts that arrived are kept: " +
        "resume to send the rest.");
      retry = el("button", "link", "Resume");
      retry.type = "button";
      retry.addEventListener("click", resume);
      side.insertBefore(retry, cancel);
      row.appendChild(note);
      row.dataset.paused = "1";
      tracker.finish("paused");
    }

    function resume() {
      if (!failed || stopped || row.dataset.result) return;
      if (note) note.remove();
      if (retry) retry.remove();
      note = retry = null;
      delete row.dataset.paused;
      tracker = tracker.resume();
      send();
    }

    function send() {
      failed = false;
      state.textContent = "";
      var count = start.multipart.parts;
      return askParts([]).then(function (known) {
        pending = [];
        before = 0;
        Object.keys(done).forEach(function (n) { before += done[n]; });
        tracker.already(before);
        if (known.joined) return;  // joined by a confirmation that did not finish: confirm again
        for (var n = 1; n <= count; n++) if (!done[n]) pending.push(n);
        if (pending.length < count) state.textContent = "resuming: " + (count - pending.length) + " of " + count + " parts were already there";
        progress();
        // Every worker ends (the others finish the part they are sending) before a failure shows.
        var workers = [], first = null;
        for (var i = 0; i < PARALLEL; i++) {
          workers.push(worker().catch(function (err) { failed = true; first = first || err; }));
        }
        return Promise.all(workers).then(function () { if (first) throw first; });
      }).then(function () {
        if (stopped) return;
        state.textContent = "checking…";
        cancel.hidden = true;  // past this point the parts are joined: nothing to cancel
        return json(zone.dataset.confirm, { token: start.token, public: publicBox.checked }).then(function (res) {
          if (res.status === 503 || res.status === 429 || res.status === 401) {  // storage or the session, not the file
            throw new Error(((res.data.rejected || [])[0] || {}).error || "the check could not run (" + res.status + ")");
          }
          if (res.data.accepted && res.data.accepted.length) {
            forget(file);
            finish("accepted", "uploaded");
            res.data.accepted.forEach(addCard);
            return;
          }
          var error = ((res.data.rejected || [])[0] || {}).error || res.data.error || "refused (" + res.status + ")";
          if (!/have not arrived/.test(error)) forget(file);
          finish("refused", error);
        });
      }).catch(function (err) {
        if (stopped || row.dataset.result) return;
        if (err.final) {  // the server has no such upload any more: nothing to resume
          forget(file);
          return finish("refused", file.name + ": " + err.message);
        }
        pause(err);
      });
    }

    cancel.addEventListener("click", function () {
      stopped = true;
      forget(file);
      Object.keys(sending).forEach(function (n) { sending[n].abort(); });
      if (start) json(zone.dataset.abort, { token: start.token });
      finish("cancelled", "");
    });

    active[key] = {
      chosenAgain: function () {
        if (failed) return resume();
        state.textContent = "already uploading";
      },
      online: function () { if (failed) resume(); },
    };

    // Start (or take up the upload this browser remembers for this file; one the server
    // has finished or let expire starts over).
    function begin(saved) {
      var asked = saved ? Promise.resolve(saved) : json(zone.dataset.direct, {
        filename: file.name, content_type: file.type, size: file.size }).then(function (res) {
        if (res.status !== 200) throw new Error(res.data.error || "refused");
        if (!res.data.multipart) throw new Error("storage did not offer a multipart upload");
        if (stopped) {  // cancelled while the upload was being started: drop it, keep nothing
          json(zone.dataset.abort, { token: res.data.token });
          throw new Error("cancelled");
        }
        remember(file, res.data);
        return res.data;
      });
      return asked.then(function (begun) {
        if (stopped) throw new Error("cancelled");
        start = begun;
        if (!saved) return null;
        row.dataset.resumed = "1";
        return askParts([]).catch(function (err) {
          if (!err.final) throw err;
          forget(file); done = {}; urls = {}; delete row.dataset.resumed;
          return begin(null);
        });
      });
    }

    begin(remembered(file)).then(send).catch(function (err) {
      if (!row.dataset.result) finish("refused", file.name + ": " + err.message);
    });
  }

  // The connection came back: paused uploads go on by themselves.
  window.addEventListener("online", function () {
    Object.keys(active).forEach(function (k) { active[k].online(); });
  });

  function handle(files) {
    // With S3 storage, photos go to the bucket by a presigned POST and videos by a
    // resumable multipart upload; otherwise through the app (a video checked from its
    // container as it arrives).
    Array.prototype.forEach.call(files, function (file) {
      var video = /^video\//.test(file.type) || /\.(mp4|mov|m4v|webm)$/i.test(file.name);
      if (!zone.dataset.direct) upload(file);
      else (video ? uploadVideo : uploadDirect)(file);
    });
  }

  ["dragenter", "dragover"].forEach(function (type) {
    zone.addEventListener(type, function (event) { event.preventDefault(); zone.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (type) {
    zone.addEventListener(type, function (event) { event.preventDefault(); zone.classList.remove("over"); });
  });
  zone.addEventListener("drop", function (event) { handle(event.dataTransfer.files); });
  input.addEventListener("change", function () { handle(input.files); input.value = ""; });
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  // Files chosen before this script ran (a slow page) go up now rather than wait for a
  // button that is no longer there.
  if (input.files && input.files.length) { handle(input.files); input.value = ""; }
})();
