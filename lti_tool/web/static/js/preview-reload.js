// Content preview: reload the page when a content file changes. The server answers
// GET /_fingerprint with a short hash of every content file's path, time and size; this
// script asks once a second and reloads when the answer differs from the page's.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !window.fetch) { return; }
  var url = script.getAttribute("data-url");
  var shown = script.getAttribute("data-fingerprint");
  if (!url || !shown) { return; }
  var delay = 1000;

  function next() { window.setTimeout(poll, delay); }

  function poll() {
    if (document.hidden) { next(); return; }
    window.fetch(url, { cache: "no-store", credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : shown; })
      .then(function (current) {
        current = current.trim();
        if (current && current !== shown) {
          window.location.reload();
          return;
        }
        next();
      })
      .catch(next); // server restarting: keep asking
  }

  next();
}());
