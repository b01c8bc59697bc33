"""The public home page (how to register the tool) and health endpoints."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, render_template, request

from lti_tool.db import request_session
from lti_tool.domain.launch import SUPPORTED_LOCALES
from lti_tool.services.health import readiness

from .app_context import lti_tool, settings, store

bp = Blueprint("home", __name__)


@bp.get("/")
def index() -> str:
    lang = request.args.get("lang")
    if lang in SUPPORTED_LOCALES:
        g.locale = lang
    tool = lti_tool()
    return render_template(
        "home.html",
        urls=tool_urls(),
        registration_open=settings().registration_open,
        tool=tool,
    )


def tool_urls() -> dict[str, str]:
    base = settings().base_url
    return {
        "login": base + "/lti/login",
        "launch": base + "/lti/launch",
        "jwks": base + "/lti/jwks",
        "register": base + "/lti/register",
        "deep_linking": base + "/lti/launch",
    }


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    checks = readiness(request_session(), store(), settings().key_encryption_key)
    ok = all(v == "ok" for v in checks.values())
    response = jsonify({"status": "ok" if ok else "unavailable", "checks": checks})
    response.status_code = 200 if ok else 503
    return response
