"""HTML pages the platform serves to real browsers.

Contract: every function returns ``(html, content_security_policy)``. The pages are the
platform's own, so they may run script, but only a nonce-ed inline script (no ``onload``
attributes, no ``unsafe-inline``); the returned CSP header allows exactly that, which proves
the flow works for a platform with a strict CSP. All interpolated values are HTML-escaped.
"""

from __future__ import annotations

import json
import secrets
from html import escape
from urllib.parse import urlsplit

# What Open edX's lti_iframe.html grants the tool's iframe.
OPENEDX_IFRAME_ALLOW = "microphone *; camera *; midi *; geolocation *; encrypted-media *"


def origin_of(url: str) -> str:
    """Return ``scheme://host[:port]`` of an absolute URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def auto_post_form(action: str, fields: dict[str, str]) -> tuple[str, str]:
    """A page that POSTs ``fields`` to ``action`` at once (the OIDC ``form_post`` response).

    Without script the visitor can press the visible "Continue" button instead.
    """
    nonce = secrets.token_urlsafe(16)
    inputs = "\n".join(
        f'      <input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in fields.items()
    )
    html = f"""<!DOCTYPE html>
<html lang="en">
  <head><meta charset="utf-8"><title>Launching the tool</title></head>
  <body>
    <form id="lti-launch" method="post" action="{escape(action)}"
          enctype="application/x-www-form-urlencoded">
{inputs}
      <noscript><button type="submit">Continue</button></noscript>
    </form>
    <script nonce="{nonce}">document.getElementById("lti-launch").submit();</script>
  </body>
</html>
"""
    csp = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; "
        f"form-action {origin_of(action)}; base-uri 'none'"
    )
    return html, csp


# The platform side of the 1EdTech "LTI Client Side postMessages" storage: answers
# lti.put_data / lti.get_data from the tool's origin only, keeping values in this page's memory
# (the iframe navigates, the course page stays). Other messages (lti.frameResize) are ignored.
_PLATFORM_STORAGE_JS = """
(function () {
  "use strict";
  var toolOrigin = %s;
  var stored = new Map();
  window.addEventListener("message", function (event) {
    var data = event.data;
    if (event.origin !== toolOrigin || !event.source || !data || typeof data !== "object") {
      return;
    }
    var answer = {subject: data.subject + ".response", message_id: data.message_id,
                  key: data.key};
    if (data.subject === "lti.put_data") {
      stored.set(toolOrigin + " " + data.key, String(data.value));
      answer.value = String(data.value);
    } else if (data.subject === "lti.get_data") {
      var name = toolOrigin + " " + data.key;
      if (stored.has(name)) {
        answer.value = stored.get(name);
      } else {
        answer.error = {code: "bad_request", message: "no value stored under this key"};
      }
    } else {
      return;
    }
    event.source.postMessage(answer, event.origin);
  });
}());
"""


def course_page(
    *, course: str, iframe_src: str, iframe_title: str, platform_storage: bool = False
) -> tuple[str, str]:
    """An LMS course page embedding the tool (via its login URL) in a cross-site iframe.

    With ``platform_storage`` the page also runs a nonce-ed script answering the tool's
    ``lti.put_data``/``lti.get_data`` postMessages (``lti_storage_target=_parent``), for the
    tool's origin (that of ``iframe_src``) only.
    """
    script, script_src = "", ""
    if platform_storage:
        nonce = secrets.token_urlsafe(16)
        code = _PLATFORM_STORAGE_JS % json.dumps(origin_of(iframe_src))
        script = f'\n    <script nonce="{nonce}">{code}    </script>'
        script_src = f"script-src 'nonce-{nonce}'; "
    html = f"""<!DOCTYPE html>
<html lang="en">
  <head><meta charset="utf-8"><title>{escape(course)} | Open edX Test Platform</title></head>
  <body>
    <main>
      <h1>{escape(course)}</h1>
      <iframe title="{escape(iframe_title)}" src="{escape(iframe_src)}"
              width="100%" height="800" allowfullscreen="true"
              allow="{OPENEDX_IFRAME_ALLOW}"></iframe>
    </main>{script}
  </body>
</html>
"""
    # frame-src covers every navigation inside the iframe: tool login -> platform /auth
    # ('self') -> tool launch.
    csp = (
        f"default-src 'none'; {script_src}frame-src 'self' {origin_of(iframe_src)}; "
        "base-uri 'none'; form-action 'none'"
    )
    return html, csp


def message_page(title: str, message: str) -> tuple[str, str]:
    """A plain page reporting an outcome (deep linking saved, or an error)."""
    html = f"""<!DOCTYPE html>
<html lang="en">
  <head><meta charset="utf-8"><title>{escape(title)}</title></head>
  <body><main><h1>{escape(title)}</h1><p>{escape(message)}</p></main></body>
</html>
"""
    return html, "default-src 'none'; base-uri 'none'; form-action 'none'"
