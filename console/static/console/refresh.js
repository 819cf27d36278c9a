// Live parts of the operations pages (the admin index's dashboard, the pipeline map):
// an element with data-url and data-refresh-ms gets its inner HTML replaced by a fresh
// fragment every few seconds, and its status line (data-status, an element id) says when.
// A failed fetch keeps the last content and says why. Nothing is fetched while the tab is hidden.
(function () {
  function live(box) {
    var note = document.getElementById(box.dataset.status);
    var every = parseInt(box.dataset.refreshMs, 10) || 5000, busy = false;
    function say(text) { if (note) note.textContent = text; }
    function refresh() {
      if (busy || document.hidden) return;
      busy = true;
      fetch(box.dataset.url, {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}})
        .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.text(); })
        .then(function (html) { box.innerHTML = html; say("Refreshed " + new Date().toLocaleTimeString() + "."); })
        .catch(function (e) { say("Refresh failed (" + e.message + "); showing the last " + (box.dataset.what || "content") + "."); })
        .then(function () { busy = false; });
    }
    setInterval(refresh, every);
  }
  document.querySelectorAll("[data-url][data-refresh-ms]").forEach(live);
})();
