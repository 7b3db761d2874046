// The gallery's search box: label suggestions as you type (for the word being typed),
// from /api/labels/, in the box's <datalist> (keyboard and screen readers as usual).
(function () {
  "use strict";
  const box = document.getElementById("search-box");
  const list = document.getElementById("label-suggestions");
  if (!box || !list || !window.fetch) return;
  let timer = null;
  let asked = "";

  box.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(suggest, 120);
  });

  function suggest() {
    const words = box.value.split(/\s+/);
    const typed = words.pop();
    const sign = /^[+-]/.test(typed) ? typed[0] : "";
    const last = typed.slice(sign.length);
    if (last.length < 1 || last === asked) return;
    asked = last;
    fetch(`${box.dataset.suggestUrl}?prefix=${encodeURIComponent(last)}`, { headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : { labels: [] }))
      .then((body) => {
        if (asked !== last) return; // a newer word is being typed
        const head = words.length ? words.join(" ") + " " : "";
        list.replaceChildren(...body.labels.map((name) => {
          const option = document.createElement("option");
          option.value = head + sign + name;
          return option;
        }));
      })
      .catch(() => {});
  }
})();
