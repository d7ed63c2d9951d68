// Orchestrator console: live updates of a running job's page, nothing else. Every page works without this script.
// It follows the job's server-sent events (same origin, the console's cookie) and, on each step, re-reads the page
// and brings the live part in line with it, changing only the elements, attributes and texts that differ (a heading,
// a form, the focused control stay the same nodes), so what shows is always what the server renders.
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

  // Makes `to` (a node of this document) look like `from` (the same place in the fresh page), keeping every node that
  // is already right: attributes and texts change in place; children are matched by kind and id (or the section they
  // label, their test id, their graph node), new ones inserted and gone ones removed, in order, nothing moved.
  function key(n) {
    return n.nodeType !== 1 ? "#" + n.nodeType : n.nodeName + "|" +
      (n.id || n.getAttribute("aria-labelledby") || n.getAttribute("data-testid") || n.getAttribute("data-node") || "");
  }

  function morph(to, from) {
    if (to.nodeType !== 1) { if (to.nodeValue !== from.nodeValue) to.nodeValue = from.nodeValue; return; }
    var i, name;
    for (i = to.attributes.length - 1; i >= 0; i--) {
      name = to.attributes[i].name;
      if (!from.hasAttribute(name)) to.removeAttribute(name);
    }
    for (i = 0; i < from.attributes.length; i++) {
      name = from.attributes[i].name;
      if (to.getAttribute(name) !== from.attributes[i].value) to.setAttribute(name, from.attributes[i].value);
    }
    if (to.hasAttribute("data-deltas")) return; // the model's tokens, kept by this script
    var at = 0;
    Array.prototype.slice.call(from.childNodes).forEach(function (b) {
      var kids = to.childNodes, k = at, want = key(b);
      while (k < kids.length && key(kids[k]) !== want) k++;
      if (k < kids.length) {
        for (; k > at; k--) to.removeChild(kids[at]);
        morph(kids[at], b);
      } else {
        to.insertBefore(document.importNode(b, true), kids[at] || null);
      }
      at++;
    });
    while (to.childNodes.length > at) to.removeChild(to.childNodes[at]);
  }

  function refresh() {
    if (pending) { again = true; return; }
    pending = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var next = new DOMParser().parseFromString(html, "text/html").getElementById(live.id);
        if (!next) return;
        morph(live, next);
        indicator = live.querySelector(".live-indicator");
        deltas = live.querySelector("[data-deltas]");
        if (deltas && text) deltas.textContent = text;
        if (indicator) { indicator.hidden = ended; indicator.textContent = "live"; }
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
