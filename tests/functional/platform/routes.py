"""HTTP routes of the platform harness.

Contract (all on ``Platform.base_url``):

* ``GET /jwks``: the platform JWKS; counts ``jwks_requests``.
* ``GET|POST /auth``: the OIDC authorization endpoint. Runs ``Platform.auth_response_for`` on
  the query (GET) or form (POST); on success a 200 page that auto-POSTs ``id_token`` and
  ``state`` to the ``redirect_uri``; on refusal a 400 page with the reason, also appended to
  ``auth_errors``. Counts ``auth_requests``.
* ``POST /token``: the consumer's client-credentials grant, answered with the LMS view's JSON
  and status codes; counts ``token_requests``.
* ``GET /course/<name>?user=<login_hint>``: a course page registered by ``course_page_url``,
  whose iframe starts a fresh login; 404 when unregistered. With ``platform_storage`` the page
  also answers the tool's ``lti.put_data``/``lti.get_data`` postMessages.
* ``POST /dl/response``: the deep linking return URL (form field ``JWT``); verifies the response
  with the consumer and records a ``DeepLinkingResult``; 200 or 400 page.
* ``/ags/...`` and ``/nrps/memberships``: AGS 2.0 and NRPS 2.0 through lti1p3platform (see
  ``services``).
* Anything else: 404.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote

import jwt

from . import pages, services
from .launch import AuthRequestError, DeepLinkingResult
from .server import Request, Response

if TYPE_CHECKING:
    from .core import Platform


def handle(platform: Platform, request: Request) -> Response:
    """Route one request to the platform."""
    method, path = request.method, request.path
    if path == "/jwks" and method in {"GET", "HEAD"}:
        with platform._lock:
            platform.jwks_requests += 1
        return Response.json(200, platform.jwks())
    if path == "/auth" and method in {"GET", "POST"}:
        return _auth(platform, request.query if method == "GET" else request.form)
    if path == "/token" and method == "POST":
        return _token(platform, request)
    if path.startswith("/course/") and method == "GET":
        return _course(platform, unquote(path.removeprefix("/course/")), request.query)
    if path == "/dl/response" and method == "POST":
        return _deep_linking_response(platform, request.form.get("JWT", ""))
    if path.startswith("/ags/") or path == "/nrps/memberships":
        return services.handle(platform, request)
    return Response.text(404, f"not found: {method} {path}")


def _auth(platform: Platform, params: dict[str, str]) -> Response:
    with platform._lock:
        platform.auth_requests += 1
    try:
        launch = platform.auth_response_for(params)
    except AuthRequestError as exc:
        with platform._lock:
            platform.auth_errors.append(str(exc))
        return Response.html(400, pages.message_page("LTI launch refused", str(exc)))
    return Response.html(200, pages.auto_post_form(params["redirect_uri"], launch))


def _token(platform: Platform, request: Request) -> Response:
    from . import openedx

    with platform._lock:
        platform.token_requests += 1
    status, body = openedx.access_token(platform.consumer_config(), request.form)
    return Response.json(status, body)


def _course(platform: Platform, course: str, query: dict[str, str]) -> Response:
    src = platform.course_page_login_url(course, query.get("user", ""))
    if src is None:
        return Response.text(404, f"no course page {course!r} for user {query.get('user')!r}")
    storage = platform.course_page_has_storage(course, query.get("user", ""))
    page = pages.course_page(
        course=course, iframe_src=src, iframe_title="DATAide", platform_storage=storage
    )
    return Response.html(200, page)


def _deep_linking_response(platform: Platform, token: str) -> Response:
    from . import openedx

    result = DeepLinkingResult(jwt=token)
    try:
        result.content_items = platform.decode_deep_linking_response(token)
    except (openedx.Lti1p3Exception, jwt.PyJWTError, KeyError, ValueError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    with platform._lock:
        platform.deep_linking_responses.append(result)
    if result.error is not None:
        return Response.html(400, pages.message_page("Deep linking refused", result.error))
    count = len(result.content_items or [])
    return Response.html(200, pages.message_page("Content saved", f"{count} item(s) saved."))
