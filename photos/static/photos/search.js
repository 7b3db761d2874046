// Search boxes with suggestions as you type (for the word being typed): the gallery's
// (labels of public photos) and My photos' (the owner's own labels and words), from
// /api/labels/, each with how many photos it finds, in the box's <datalist> (keyboard
// and screen readers as usual).
(function () {
  "use strict";
  if (!window.fetch) return;
  document.querySelectorAll("input[data-suggest-url][list]").forEach((box) => {
    const list = document.getElementById(box.getAttribute("list"));
    if (list) suggestFor(box, list);
  });

  function suggestFor(box, list) {
    let timer = null;
    let asked = "";
    box.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(suggest, 120);
    });
    box.dataset.suggesting = "on"; // listening from here on (tests wait for it)

    function ask(prefix) {
      const url = new URL(box.dataset.suggestUrl, window.location.href);
      url.searchParams.set("prefix", prefix);
      return fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then((r) => (r.ok ? r.json() : { suggestions: [] }))
        .then((data) => data.suggestions || []);
    }

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
      (pair ? ask(pair) : Promise.resolve([]))
        .then((two) => (two.length ? { found: two, keep: words.slice(0, -1) } : ask(last).then(
          (one) => ({ found: one, keep: words }))))
        .then(({ found, keep }) => {
          if (asked !== box.value) return; // the user typed on
          const typedAlready = new Set(keep.map((w) => w.replace(/^[+-]/, "").toLowerCase()));
          const head = keep.length ? keep.join(" ") + " " : "";
          list.replaceChildren(...found.filter((s) => !typedAlready.has(s.name.toLowerCase())).map((s) => {
            const option = document.createElement("option");
            option.value = head + sign + s.name;
            option.label = `${s.name} (${s.photos} photo${s.photos === 1 ? "" : "s"})`;
            return option;
          }));
        })
        .catch(() => {});
    }
  }
})();
