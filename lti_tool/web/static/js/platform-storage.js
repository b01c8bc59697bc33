// 1EdTech LTI Client Side postMessages: platform storage (lti.put_data / lti.get_data).
// Used only when the platform sends lti_storage_target, for browsers that drop the
// tool's cookies inside the LMS iframe.
(function () {
  "use strict";
  var TIMEOUT_MS = 3000;

  function targetWindow(name) {
    if (!name || name === "_parent") { return window.parent; }
    try { return window.parent.frames[name] || window.parent; } catch (e) { return window.parent; }
  }

  function send(node, subject, extra, onAnswer, onTimeout) {
    var id = "dataide-" + Math.random().toString(36).slice(2);
    var origin = node.getAttribute("data-origin");
    var done = false;
    function listener(event) {
      var data = event.data || {};
      if (event.origin !== origin || data.message_id !== id) { return; }
      if (data.subject !== subject + ".response") { return; }
      done = true;
      window.removeEventListener("message", listener);
      onAnswer(data);
    }
    window.addEventListener("message", listener);
    var message = { subject: subject, message_id: id, key: node.getAttribute("data-key") };
    Object.keys(extra).forEach(function (k) { message[k] = extra[k]; });
    targetWindow(node.getAttribute("data-target")).postMessage(message, origin);
    window.setTimeout(function () {
      if (!done) { window.removeEventListener("message", listener); onTimeout(); }
    }, TIMEOUT_MS);
  }

  var put = document.getElementById("platform-storage");
  if (put) {
    var next = put.getAttribute("data-next");
    var go = function () { window.location.assign(next); };
    send(put, "lti.put_data", { value: put.getAttribute("data-value") }, go, go);
  }

  var form = document.getElementById("platform-storage-form");
  if (form) {
    var fallback = function () {
      document.getElementById("storage-fallback").hidden = false;
    };
    send(form, "lti.get_data", {}, function (answer) {
      if (answer.error || typeof answer.value !== "string") { fallback(); return; }
      form.elements.lti_storage_secret.value = answer.value;
      form.submit();
    }, fallback);
  }
}());
