"""LTI endpoints: login initiation, launch, JWKS, and the in-frame language switch."""

from __future__ import annotations

import logging
import time
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response, g, jsonify, make_response, render_template, request

from lti_tool.db import request_session
from lti_tool.domain.launch import DEEP_LINKING, SUPPORTED_LOCALES, LaunchContext
from lti_tool.logs import log_event, subject_hash
from lti_tool.lti import (
    FORM_FIELD,
    HEADER,
    CookiesBlocked,
    LtiError,
    NeedsPlatformStorage,
)
from lti_tool.lti.login import LOGIN_PARAMS
from lti_tool.services.launches import record_launch, set_user_locale
from lti_tool.services.platforms import frame_origins_of

from .app_context import lti_tool, rate_limiter, settings
from .errors import render_error
from .i18n import accept_language_locale
from .security import allow_framing_by, rate_limited

bp = Blueprint("lti", __name__, url_prefix="/lti")
log = logging.getLogger("lti_tool.launch")


def _set_state_cookie(response: Response, name: str, value: str, max_age: int) -> None:
    secure = settings().secure_cookies
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=urlsplit(settings().base_url).path.rstrip("/") + "/lti",
        httponly=True,
        secure=secure,
        # SameSite=None so the cookie comes back on the platform's cross-site form POST;
        # Partitioned (CHIPS) so it survives third-party cookie blocking in the iframe.
        samesite="None" if secure else "Lax",
        partitioned=secure,
    )


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response:
    if rate_limited(rate_limiter(), "login", settings().rate_limit_per_minute):
        raise LtiError("rate_limited", "login rate limit", status=429)
    params = {k: str(request.values[k]) for k in LOGIN_PARAMS if request.values.get(k)}
    result = lti_tool().begin_login(request_session(), params)
    response: Response
    if result.storage_target:
        response = make_response(
            render_template(
                "lti/storage_put.html",
                target=result.storage_target,
                key=result.storage_key,
                value=result.storage_value,
                origin=result.platform_origin,
                next_url=result.redirect_url,
            )
        )
    else:
        # A bare 302: the URL is already encoded, and nobody reads a redirect's body.
        response = Response(status=302, headers={"Location": result.redirect_url})
    _set_state_cookie(response, result.cookie_name, result.state, result.cookie_max_age)
    return response


def _new_window_url(login_params: dict[str, str]) -> str:
    params = {k: v for k, v in login_params.items() if k != "lti_storage_target"}
    params["lti1p3_new_window"] = "1"
    return lti_tool().login_url + "?" + urlencode(params)


@bp.post("/launch")
def launch() -> Response:
    started = time.perf_counter()
    session = request_session()
    params = {
        k: str(request.form[k])
        for k in ("id_token", "state", "lti_storage_secret")
        if k in request.form
    }
    try:
        launch_ctx = lti_tool().validate_launch(
            session, params, request.cookies, accept_language_locale()
        )
    except NeedsPlatformStorage as exc:
        state = exc.login_state
        return make_response(
            render_template(
                "lti/storage_get.html",
                target=state.storage_target,
                key=f"dataide_state_{state.state}",
                origin=state.platform_origin,
                id_token=params.get("id_token", ""),
                state=state.state,
                new_window_url=_new_window_url(state.login_params),
            )
        )
    except CookiesBlocked as exc:
        response = make_response(
            render_template(
                "lti/cookies_blocked.html",
                new_window_url=_new_window_url(exc.login_state.login_params),
            ),
            403,
        )
        return response
    launch_ctx = record_launch(session, launch_ctx)
    allow_framing_by(*frame_origins_of(session, launch_ctx.registration_pk))
    token = lti_tool().tokens.start(launch_ctx)
    log_event(
        log,
        "launch",
        subject=subject_hash(launch_ctx.issuer, launch_ctx.sub),
        issuer=launch_ctx.issuer,
        deployment=launch_ctx.deployment_id,
        message=launch_ctx.message_type,
        roles=sorted(launch_ctx.roles),
        ms=round((time.perf_counter() - started) * 1000, 1),
    )
    response = _render_landing(launch_ctx, token)
    # The state is spent: drop its cookie.
    _set_state_cookie(response, "lti1p3-" + params.get("state", ""), "", 0)
    return response


def _render_landing(launch_ctx: LaunchContext, token: str) -> Response:
    g.locale = launch_ctx.locale
    if launch_ctx.message_type == DEEP_LINKING:
        if not launch_ctx.is_mentor:
            # Only mentors/editors place content; nothing is sent back to the platform.
            return render_error(403, "forbidden")
        # Deferred: those blueprints import resume_launch from this module.
        from .deep_linking_views import render_picker

        return render_picker(launch_ctx)
    from .learn_views import placement_or_error, render_placement

    placement = placement_or_error(launch_ctx)
    if isinstance(placement, Response):
        return placement
    if placement is not None:
        return render_placement(launch_ctx, placement)
    return make_response(
        render_template(
            "lti/landing.html", launch=launch_ctx, launch_token=token, token_field=FORM_FIELD
        )
    )


def resume_launch() -> LaunchContext:
    """The launch of an in-frame request (form field or header); renews framing rules."""
    token = request.form.get(FORM_FIELD) or request.headers.get(HEADER)
    try:
        launch_ctx = lti_tool().tokens.resume(token)
    except LtiError:
        g.locale = request.form.get("locale") or None
        raise
    allow_framing_by(*frame_origins_of(request_session(), launch_ctx.registration_pk))
    g.locale = launch_ctx.locale
    return launch_ctx


@bp.post("/locale")
def switch_locale() -> Response:
    launch_ctx = resume_launch()
    locale = request.form.get("locale", "")
    if locale in SUPPORTED_LOCALES and launch_ctx.user_pk is not None:
        set_user_locale(request_session(), launch_ctx.user_pk, locale)
        launch_ctx = launch_ctx.with_changes(locale=locale)
        lti_tool().tokens.update(launch_ctx)
    return _render_landing(launch_ctx, lti_tool().tokens.token_for(launch_ctx.launch_id))


@bp.get("/jwks")
def jwks() -> Response:
    response = jsonify(lti_tool().jwks(request_session()))
    # Platforms cache the key set; a short max-age keeps rotation quick.
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
