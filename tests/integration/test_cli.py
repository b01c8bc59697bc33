"""The lti-tool command, run in-process against a test application."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.cli import ScriptInfo
from sqlalchemy import select

from lti_tool import create_app
from lti_tool.cli import main
from lti_tool.db import get_db
from lti_tool.models import CoordinatorGrant, Deployment, User

ISS = "https://lms.example.org"
ADD = [
    "platform",
    "add",
    "--issuer",
    ISS,
    "--client-id",
    "block-1",
    "--auth-login-url",
    ISS + "/api/lti_consumer/v1/launch/",
    "--auth-token-url",
    ISS + "/api/lti_consumer/v1/token/block-1",
    "--key-set-url",
    ISS + "/api/lti_consumer/v1/public_keysets/block-1",
    "--deployment-id",
    "1",
    "--frame-origin",
    "https://studio.example.org",
]


@pytest.fixture
def run(app: Flask):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(main, list(args), obj=ScriptInfo(create_app=lambda: app), input=input)

    return invoke


def test_platform_add_list_and_several_client_ids(run: Any) -> None:
    assert run(*ADD).exit_code == 0
    second = [a.replace("block-1", "block-2") for a in ADD]
    result = run(*second)
    assert result.exit_code == 0, result.output
    listed = json.loads(run("platform", "list", "--json").output)
    assert [r["client_id"] for r in listed] == ["block-1", "block-2"]
    assert listed[0]["deployments"] == [{"deployment_id": "1", "status": "active"}]
    assert "https://studio.example.org" in listed[0]["frame_origins"]
    assert ISS in listed[0]["frame_origins"]


def test_platform_add_refuses_http_and_names_each_bad_option(run: Any, app: Flask) -> None:
    bad = [a.replace("https://lms", "http://lms") for a in ADD]
    result = run(*bad)
    assert result.exit_code == 1
    for option in ("--issuer", "--auth-login-url", "--auth-token-url", "--key-set-url"):
        assert option in result.output
    assert "must use https" in result.output
    with get_db(app).session() as session:
        assert session.scalars(select(Deployment)).first() is None


def test_approve_and_remove(run: Any, app: Flask) -> None:
    add_without_deployment = [a for a in ADD if a not in ("--deployment-id", "1")]
    assert run(*add_without_deployment).exit_code == 0
    result = run("platform", "approve", "--issuer", ISS, "--deployment-id", "1")
    assert result.exit_code == 0, result.output
    with get_db(app).session() as session:
        assert session.scalars(select(Deployment.status)).one() == "active"
    result = run("platform", "remove", "--issuer", ISS, "--deployment-id", "1")
    assert result.exit_code == 0 and "removed deployment 1" in result.output
    assert run("platform", "remove", "--issuer", ISS).exit_code == 0
    result = run("platform", "remove", "--issuer", ISS)
    assert result.exit_code == 1 and "no registration" in result.output


def test_set_org_and_scoped_coordinator(run: Any, app: Flask) -> None:
    run(*ADD)
    result = run(
        "platform",
        "set-org",
        "--issuer",
        ISS,
        "--deployment-id",
        "1",
        "--org",
        "Centre Entraide",
        "--org-name",
        "Centre d'entraide",
    )
    assert result.exit_code == 0, result.output
    assert "centre-entraide" in result.output
    bad = run("coordinators", "add", "--issuer", ISS, "--sub", "u1", "--org", "nope")
    assert bad.exit_code == 1 and "no organization" in bad.output
    ok = run("coordinators", "add", "--issuer", ISS, "--sub", "u1", "--org", "centre-entraide")
    assert ok.exit_code == 0 and "for centre-entraide" in ok.output
    wide = run("coordinators", "add", "--issuer", ISS, "--sub", "u2")
    assert "program-wide" in wide.output
    with get_db(app).session() as session:
        assert sorted(session.scalars(select(CoordinatorGrant.scope))) == ["*", "centre-entraide"]
    assert run("coordinators", "remove", "--issuer", ISS, "--sub", "u1").output.startswith(
        "removed 1"
    )


def test_users_export_and_erase(run: Any, app: Flask) -> None:
    with get_db(app).session() as session:
        session.add(User(issuer=ISS, sub="s-1", name="Marie Tremblay", email="m@example.org"))
    exported = json.loads(run("users", "export", "--issuer", ISS, "--sub", "s-1").output)
    assert exported["user"]["email"] == "m@example.org"
    assert run("users", "erase", "--issuer", ISS, "--sub", "s-1", input="n\n").exit_code == 1
    assert run("users", "erase", "--issuer", ISS, "--sub", "s-1", "--yes").exit_code == 0
    missing = run("users", "export", "--issuer", ISS, "--sub", "s-1")
    assert missing.exit_code == 1 and "no user" in missing.output


def test_keys_rotate_keeps_previous_in_jwks(run: Any) -> None:
    before = {k["kid"] for k in json.loads(run("keys", "list").output)["keys"]}
    assert run("keys", "rotate").exit_code == 0
    after = {k["kid"] for k in json.loads(run("keys", "list").output)["keys"]}
    assert before < after and len(after) == 2


def test_lti_urls_and_invite(run: Any) -> None:
    out = run("lti", "urls").output
    for path in ("/lti/login", "/lti/launch", "/lti/jwks", "/lti/register"):
        assert "http://127.0.0.1:5999" + path in out
    invite = run("platform", "invite", "--note", "x").output.splitlines()[0]
    assert invite.startswith("http://127.0.0.1:5999/lti/register?invite=")


def test_secrets_generate(run: Any) -> None:
    lines = run("secrets", "generate").output.splitlines()
    assert [line.split("=", 1)[0] for line in lines] == ["SECRET_KEY", "KEY_ENCRYPTION_KEY"]


def test_readyz_detects_a_wrong_key_encryption_key(app: Flask, tmp_path: Any) -> None:
    from lti_tool.settings import generate_secrets

    assert app.test_client().get("/readyz").status_code == 200
    settings = app.extensions["dataide_settings"]
    wrong = create_app(
        settings.with_overrides(key_encryption_key=generate_secrets()["KEY_ENCRYPTION_KEY"])
    )
    response = wrong.test_client().get("/readyz")
    assert response.status_code == 503
    assert "KEY_ENCRYPTION_KEY" in response.get_json()["checks"]["tool_key"]


def test_readyz_is_a_json_503_when_the_database_fails(backend_app: Flask) -> None:
    from sqlalchemy import text

    engine = get_db(backend_app).engine
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE tool_keys RENAME TO tool_keys_gone"))
    try:
        response = backend_app.test_client().get("/readyz")
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE tool_keys_gone RENAME TO tool_keys"))
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"].startswith("error")
    assert "X-Request-ID" in response.headers and "Content-Security-Policy" in response.headers


def test_platform_add_again_keeps_what_it_is_not_given(run: Any) -> None:
    assert (
        run(*ADD, "--auto-approve", "--auth-audience", "https://lms.example.org/oauth").exit_code
        == 0
    )
    again = [a.replace("https://studio.example.org", "https://preview.example.org") for a in ADD]
    assert run(*again).exit_code == 0
    listed = json.loads(run("platform", "list", "--json").output)[0]
    assert listed["auto_approve"] is True
    assert {"https://studio.example.org", "https://preview.example.org"} <= set(
        listed["frame_origins"]
    )
    assert run(*ADD, "--no-auto-approve").exit_code == 0
    assert json.loads(run("platform", "list", "--json").output)[0]["auto_approve"] is False


def test_users_find_gives_issuer_and_sub(run: Any, app: Flask) -> None:
    with get_db(app).session() as session:
        session.add(
            User(
                issuer=ISS,
                sub="s-42",
                given_name="Marie",
                family_name="Tremblay",
                email="marie@organisme.example",
            )
        )
        session.add(User(issuer=ISS, sub="s-43", name="Jean Roy", email=None))
    found = run("users", "find", "tremblay")
    assert found.exit_code == 0 and f"{ISS}  s-42  Marie Tremblay" in found.output
    assert "s-42" in run("users", "find", "ORGANISME").output
    assert "s-43" in run("users", "find", "jean").output
    missing = run("users", "find", "nobody-here")
    assert missing.exit_code == 1 and "nobody" in missing.output


def test_invite_purges_long_expired_invitations(run: Any, app: Flask) -> None:
    from datetime import UTC, datetime, timedelta

    from lti_tool.models import RegistrationInvitation

    with get_db(app).session() as session:
        session.add(
            RegistrationInvitation(
                token_hash="0" * 64, expires_at=datetime.now(UTC) - timedelta(days=40)
            )
        )
        session.add(
            RegistrationInvitation(
                token_hash="1" * 64, expires_at=datetime.now(UTC) - timedelta(days=2)
            )
        )
    assert run("platform", "invite").exit_code == 0
    with get_db(app).session() as session:
        hashes = set(session.scalars(select(RegistrationInvitation.token_hash)))
    assert "0" * 64 not in hashes and "1" * 64 in hashes and len(hashes) == 2
