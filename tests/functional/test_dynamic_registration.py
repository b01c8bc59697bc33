"""LTI Dynamic Registration against a platform side written here (Moodle-like).

The platform serves its OpenID configuration and a registration endpoint that checks
the bearer token and what the tool asks for, as Moodle's registration_helper does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.wrappers import Request, Response

from lti_tool.db import get_db
from lti_tool.models import Deployment, Registration, RegistrationInvitation
from lti_tool.services.platforms import create_invitation
from tests.browser.harness import serve_wsgi
from tests.conftest import build_app, make_settings

SCOPES = {
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
}


@dataclass
class FakeMoodle:
    base: str = ""
    token: str = "one-time-registration-token"
    registrations: list[dict[str, Any]] = field(default_factory=list)
    answer_status: int = 200
    config_override: dict[str, Any] = field(default_factory=dict)
    sent_before_confirmation: int = -1

    def config(self) -> dict[str, Any]:
        doc = {
            "issuer": self.base,
            "authorization_endpoint": self.base + "/mod/lti/auth.php",
            "token_endpoint": self.base + "/mod/lti/token.php",
            "jwks_uri": self.base + "/mod/lti/certs.php",
            "registration_endpoint": self.base + "/mod/lti/openid-registration.php",
            "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                "product_family_code": "moodle",
                "version": "4.5",
            },
        }
        doc.update(self.config_override)
        return doc

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.path == "/mod/lti/openid-configuration.php":
            response = Response(json.dumps(self.config()), content_type="application/json")
        elif request.path == "/mod/lti/openid-registration.php" and request.method == "POST":
            if request.headers.get("Authorization") != "Bearer " + self.token:
                response = Response('{"error":"bad token"}', 401)
            else:
                body = request.get_json()
                self.registrations.append(body)
                # Moodle requires these three; it is what makes a registration usable.
                ok = (
                    body.get("token_endpoint_auth_method") == "private_key_jwt"
                    and "id_token" in body.get("response_types", [])
                    and body.get("application_type") == "web"
                )
                answer = {
                    "client_id": "moodle-client-42",
                    **body,
                    "https://purl.imsglobal.org/spec/lti-tool-configuration": {
                        **body["https://purl.imsglobal.org/spec/lti-tool-configuration"],
                        "deployment_id": "7",
                    },
                }
                status = self.answer_status if ok else 400
                response = Response(json.dumps(answer), status, content_type="application/json")
        else:
            response = Response("not found", 404)
        return response(environ, start_response)


@pytest.fixture
def moodle() -> Iterator[FakeMoodle]:
    platform = FakeMoodle()
    with serve_wsgi(platform, host="localhost") as base:
        platform.base = base
        yield platform


def _register(app: Flask, moodle: FakeMoodle, **extra: str) -> tuple[Any, Any]:
    client = app.test_client()
    query = {
        "openid_configuration": moodle.base + "/mod/lti/openid-configuration.php",
        "registration_token": moodle.token,
        **extra,
    }
    page = client.get("/lti/register", query_string=query)
    if page.status_code != 200:
        return page, None
    html = page.get_data(as_text=True)
    moodle.sent_before_confirmation = len(moodle.registrations)
    confirmation = html.split('name="confirmation" value="')[1].split('"')[0]
    done = client.post("/lti/register", data={**query, "confirmation": confirmation})
    return page, done


def test_moodle_registers_after_one_confirmation(app: Flask, moodle: FakeMoodle) -> None:
    page, done = _register(app, moodle)
    assert page.status_code == 200
    assert "moodle" in page.get_data(as_text=True)
    # Framed by the registering platform only.
    assert moodle.base in page.headers["Content-Security-Policy"]
    assert moodle.sent_before_confirmation == 0  # nothing sent before the confirmation
    assert done.status_code == 200
    assert "registration.js" in done.get_data(as_text=True)  # posts org.imsglobal.lti.close

    sent = moodle.registrations[0]
    assert set(sent["scope"].split()) == SCOPES
    tool_conf = sent["https://purl.imsglobal.org/spec/lti-tool-configuration"]
    assert set(tool_conf["claims"]) == {
        "sub",
        "name",
        "given_name",
        "family_name",
        "email",
        "locale",
    }
    assert {m["type"] for m in tool_conf["messages"]} == {
        "LtiResourceLinkRequest",
        "LtiDeepLinkingRequest",
    }
    assert sent["initiate_login_uri"].endswith("/lti/login")
    assert sent["redirect_uris"] == [sent["initiate_login_uri"].replace("login", "launch")]

    with get_db(app).session() as session:
        reg = session.scalars(select(Registration)).one()
        assert (reg.issuer, reg.client_id, reg.source) == (
            moodle.base,
            "moodle-client-42",
            "dynamic",
        )
        assert reg.key_set_url == moodle.base + "/mod/lti/certs.php"
        assert reg.product_family == "moodle"
        dep = session.scalars(select(Deployment)).one()
        assert (dep.deployment_id, dep.status) == ("7", "active")


def test_registration_refused_by_platform_writes_nothing(app: Flask, moodle: FakeMoodle) -> None:
    moodle.answer_status = 500
    _, done = _register(app, moodle)
    assert done.status_code == 502
    assert "registration_refused" in done.get_data(as_text=True)
    with get_db(app).session() as session:
        assert session.scalars(select(Registration)).first() is None


def test_configuration_must_belong_to_its_issuer(app: Flask, moodle: FakeMoodle) -> None:
    moodle.config_override = {"issuer": "https://other-lms.example.org"}
    page, _ = _register(app, moodle)
    assert page.status_code == 400
    assert "registration_issuer_mismatch" in page.get_data(as_text=True)


def test_insecure_platform_endpoint_is_refused(app: Flask, moodle: FakeMoodle) -> None:
    moodle.config_override = {"jwks_uri": "http://lms.example.org/certs"}
    page, _ = _register(app, moodle)
    assert page.status_code == 400
    assert "insecure_url" in page.get_data(as_text=True)


def test_tampered_confirmation_is_refused(app: Flask, moodle: FakeMoodle) -> None:
    client = app.test_client()
    query = {
        "openid_configuration": moodle.base + "/mod/lti/openid-configuration.php",
        "registration_token": moodle.token,
    }
    response = client.post("/lti/register", data={**query, "confirmation": "forged"})
    assert response.status_code == 400
    assert "registration_form_expired" in response.get_data(as_text=True)
    assert moodle.registrations == []


def test_production_needs_a_one_time_invitation(tmp_path: Any, moodle: FakeMoodle) -> None:
    app = build_app(make_settings(tmp_path, base_url="https://dataide.example.org"))
    page, _ = _register(app, moodle)
    assert page.status_code == 403
    assert "registration_closed" in page.get_data(as_text=True)

    with get_db(app).session() as session:
        invite = create_invitation(session, "Moodle X")
    page, done = _register(app, moodle, invite=invite)
    assert page.status_code == 200 and done.status_code == 200
    with get_db(app).session() as session:
        assert session.scalars(select(RegistrationInvitation)).one().used_at is not None
    # The same invitation cannot register a second time.
    again, _ = _register(app, moodle, invite=invite)
    assert again.status_code == 403


def test_lookalike_host_cannot_claim_an_issuer(app: Flask, moodle: FakeMoodle) -> None:
    """A configuration served from another host may not name this host as its issuer."""
    # "http://localhost:4641" is a string prefix of "http://localhost:46411/...": a plain
    # startswith check would let this page register for another platform's issuer.
    moodle.config_override = {"issuer": moodle.base[:-1]}
    page, _ = _register(app, moodle)
    assert page.status_code == 400
    assert "registration_issuer_mismatch" in page.get_data(as_text=True)
    # Even a refusal is visible inside the registering platform's dialog.
    assert moodle.base in page.headers["Content-Security-Policy"].split("frame-ancestors")[1]
