// Ask the LMS to size its iframe to the page (lti.frameResize). No framework: fast on
// old computers.
(function () {
  "use strict";
  function resize() {
    if (window.parent === window) { return; }
    var height = Math.ceil(document.documentElement.scrollHeight);
    window.parent.postMessage({ subject: "lti.frameResize", height: height }, "*");
  }
  window.addEventListener("load", resize);
  if (window.ResizeObserver) { new ResizeObserver(resize).observe(document.body); }
}());
