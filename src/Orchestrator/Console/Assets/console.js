// Orchestrator console: live updates of a running job's page, nothing else. Every page works without this script.
// It follows the job's server-sent events (same origin, the console's cookie) and, on each step, re-reads the page
// and swaps the live part in, so what shows is always what the server renders.
(function () {
  "use strict";
  var live = document.querySelector("[data-live][data-events]");
  if (!live || live.getAttribute("data-terminal") === "true" || !window.EventSource) return;
  var indicator = live.querySelector(".live-indicator");
  var deltas = live.querySelector("[data-deltas]");
  var pending = false, again = false, ended = false;
  var text = "";
  var source = new EventSource(live.getAttribute("data-events"));
  if (indicator) { indicator.hidden = false; indicator.textContent = "live"; }

  function refresh() {
    if (pending) { again = true; return; }
    pending = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var next = new DOMParser().parseFromString(html, "text/html").getElementById(live.id);
        if (!next) return;
        var focused = document.activeElement && document.activeElement.id;
        live.innerHTML = next.innerHTML;
        live.setAttribute("data-terminal", next.getAttribute("data-terminal"));
        indicator = live.querySelector(".live-indicator");
        deltas = live.querySelector("[data-deltas]");
        if (deltas && text) deltas.textContent = text;
        if (indicator) { indicator.hidden = ended; indicator.textContent = "live"; }
        if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
      })
      .catch(function () { })
      .then(function () { pending = false; if (again) { again = false; refresh(); } });
  }

  ["job.status", "node.started", "node.completed", "approval.requested"].forEach(function (type) {
    source.addEventListener(type, refresh);
  });
  source.addEventListener("model.delta", function (e) {
    try { var d = JSON.parse(e.data); text += (d.text || d.delta || ""); } catch (_) { text += e.data; }
    if (deltas) deltas.textContent = text;
  });
  source.addEventListener("job.end", function () {
    ended = true;
    source.close();
    refresh();
  });
})();
