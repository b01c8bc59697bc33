// Send the signed answer back to the platform without a click (the button stays for no-JS).
(function () {
  "use strict";
  var form = document.getElementById("auto-submit");
  if (form) { form.submit(); }
}());
