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
    if (last.length < 1 || box.value === asked) return;
    asked = box.value;
    // "dining t" may be the start of one label ("Dining Table"): ask for the last two
    // words first, then the last one.
    const pair = words.length && !/^[+-]/.test(last) ? `${words[words.length - 1]} ${last}` : null;
    const ask = (prefix) => fetch(`${box.dataset.suggestUrl}?prefix=${encodeURIComponent(prefix)}`,
      { headers: { Accept: "application/json" } }).then((r) => (r.ok ? r.json() : { labels: [] }));
    (pair ? ask(pair) : Promise.resolve({ labels: [] }))
      .then((two) => (two.labels.length ? { labels: two.labels, keep: words.slice(0, -1) } : ask(last).then(
        (one) => ({ labels: one.labels, keep: words }))))
      .then(({ labels, keep }) => {
        if (asked !== box.value) return; // the user typed on
        const typedAlready = new Set(keep.map((w) => w.replace(/^[+-]/, "").toLowerCase()));
        const head = keep.length ? keep.join(" ") + " " : "";
        list.replaceChildren(...labels.filter((name) => !typedAlready.has(name.toLowerCase())).map((name) => {
          const option = document.createElement("option");
          option.value = head + sign + name;
          return option;
        }));
      })
      .catch(() => {});
  }
})();
