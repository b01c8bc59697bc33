// Self-check questions in the content preview: "Check" shows the feedback of the chosen
// answers and says whether they are right. Nothing is saved. The answer key is in the
// page's data-* attributes, which only the preview writes; learner pages check answers
// on the server.
(function () {
  "use strict";

  // Case-, accent- and spacing-insensitive form of a short answer (the same rules as
  // normalize_answer in lti_tool/domain/progress.py, which grades learners).
  function normalize(text) {
    var value = String(text || "").toLowerCase();
    if (value.normalize) { value = value.normalize("NFD").replace(/[\u0300-\u036f]/g, ""); }
    return value
      .replace(/[\u2019\u2018`]/g, "'")
      .replace(/[\s\u00a0]+/g, " ")
      .replace(/^[\s"'«»\u201c\u201d\u201e]+|[\s"'«»\u201c\u201d\u201e.!?;:,]+$/g, "");
  }

  function each(list, fn) { Array.prototype.forEach.call(list, fn); }

  function hideFeedback(form) {
    each(form.querySelectorAll(".feedback"), function (node) { node.hidden = true; });
    var status = form.querySelector(".self-check-status");
    if (status) { status.textContent = ""; }
  }

  function say(form, key) {
    var status = form.querySelector(".self-check-status");
    if (!status) { return; }
    status.textContent = "";
    status.className = "self-check-status is-" + key;
    // A fresh text node after a tick: screen readers announce it again on each check.
    window.setTimeout(function () {
      status.textContent = form.getAttribute("data-msg-" + key) || "";
    }, 50);
  }

  function checkChoices(form) {
    var inputs = form.querySelectorAll("input[type=radio], input[type=checkbox]");
    var chosen = 0;
    var right = 0;
    var wrong = 0;
    var correct = 0;
    each(inputs, function (input) {
      var isCorrect = input.getAttribute("data-correct") === "true";
      if (isCorrect) { correct += 1; }
      var feedback = form.querySelector('.feedback[data-for="' + input.id + '"]');
      if (feedback) { feedback.hidden = !input.checked; }
      if (!input.checked) { return; }
      chosen += 1;
      if (isCorrect) { right += 1; } else { wrong += 1; }
    });
    if (!chosen) { return "empty"; }
    if (wrong === 0 && right === correct) { return "correct"; }
    return right > 0 ? "partial" : "incorrect";
  }

  function checkText(form) {
    var input = form.querySelector("input[type=text]");
    if (!input) { return "empty"; }
    var given = normalize(input.value);
    if (!given) { return "empty"; }
    var accepted = [];
    try { accepted = JSON.parse(input.getAttribute("data-accepted") || "[]"); } catch (e) { accepted = []; }
    var ok = accepted.some(function (answer) { return normalize(answer) === given; });
    var shown = form.querySelector('.feedback[data-when="' + (ok ? "correct" : "incorrect") + '"]');
    if (shown) { shown.hidden = false; }
    return ok ? "correct" : "incorrect";
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form.self-check[data-preview]")) { return; }
    event.preventDefault();
    hideFeedback(form);
    var type = form.getAttribute("data-type");
    say(form, type === "short_text" ? checkText(form) : checkChoices(form));
  });

  // A changed answer makes the shown feedback stale.
  document.addEventListener("input", function (event) {
    var form = event.target.form;
    if (form && form.matches && form.matches("form.self-check[data-preview]")) { hideFeedback(form); }
  });
}());
