"""The ``lti-tool`` command: a Flask CLI group for administrators and developers."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from alembic import command as alembic_command
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from lti_tool import ContentError, create_app
from lti_tool.content.catalog import load_catalog, load_catalog_cached
from lti_tool.content.diagnostics import format_diagnostics, has_errors
from lti_tool.db import get_db
from lti_tool.lti.keys import ensure_current_key, published_jwks, rotate_keys
from lti_tool.migrations import alembic_config
from lti_tool.services import content as content_service
from lti_tool.services import coordinators as coord_service
from lti_tool.services import platforms as platform_service
from lti_tool.services import users as user_service
from lti_tool.services.grade_worker import GradeWorker
from lti_tool.settings import Settings, SettingsError, generate_secrets
from lti_tool.web.preview import PreviewRequestHandler, create_preview_app


def _create_app() -> Flask:
    try:
        return create_app()
    except (SettingsError, ContentError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False)
def main() -> None:
    """DATAide LTI tool administration."""


def _settings() -> Settings:
    settings: Settings = current_app.extensions["dataide_settings"]
    return settings


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


# -- setup, secrets, database ------------------------------------------------------------


@main.command("setup")
@with_appcontext
def setup() -> None:
    """Migrate the database, generate the tool's keys and record the published content
    versions of content.lock (idempotent)."""
    alembic_command.upgrade(alembic_config(_settings().database_url), "head")
    with get_db().session() as session:
        key = ensure_current_key(session, _settings().key_encryption_key)
        kid = key.kid
        synced = content_service.sync_from_lock(session, Path(_settings().content_path))
    click.echo(f"database ready; tool key {kid}")
    if synced:
        click.echo(f"published content recorded from content.lock: {len(synced)} version(s)")
    click.echo(f"home page: {_settings().base_url}/")


@main.group("secrets")
def secrets_group() -> None:
    """Secrets for production."""


@secrets_group.command("generate", with_appcontext=False)
def secrets_generate() -> None:
    """Print fresh SECRET_KEY and KEY_ENCRYPTION_KEY lines for an environment file."""
    for name, value in generate_secrets().items():
        click.echo(f"{name}={value}")


@main.group("db")
def db_group() -> None:
    """Database migrations (Alembic)."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
@with_appcontext
def db_upgrade(revision: str) -> None:
    alembic_command.upgrade(alembic_config(_settings().database_url), revision)


@db_group.command("downgrade")
@click.argument("revision")
@with_appcontext
def db_downgrade(revision: str) -> None:
    alembic_command.downgrade(alembic_config(_settings().database_url), revision)


@db_group.command("current")
@with_appcontext
def db_current() -> None:
    alembic_command.current(alembic_config(_settings().database_url))


@db_group.command("check")
@with_appcontext
def db_check() -> None:
    """Fail when the models differ from the migrations."""
    alembic_command.check(alembic_config(_settings().database_url))


# -- platforms ------------------------------------------------------------------------


@main.group("platform")
def platform_group() -> None:
    """Register LMS platforms and manage their deployments."""


@platform_group.command("add")
@click.option("--issuer", required=True, help="Platform issuer (iss), e.g. https://lms.example.org")
@click.option("--client-id", required=True, help="Client id the platform gave the tool.")
@click.option("--auth-login-url", required=True, help="Platform OIDC authorization URL.")
@click.option("--auth-token-url", required=True, help="Platform OAuth2 access token URL.")
@click.option("--key-set-url", required=True, help="Platform public keyset (JWKS) URL.")
@click.option("--deployment-id", "deployment_ids", multiple=True, help="Repeatable. Open edX: 1.")
@click.option("--name", default="", help="Name shown to administrators.")
@click.option("--auth-audience", default=None, help="aud for service tokens, if not the token URL.")
@click.option(
    "--frame-origin", "frame_origins", multiple=True, help="Extra origin framing the tool."
)
@click.option(
    "--auto-approve/--no-auto-approve",
    default=None,
    help="Accept new deployments without `platform approve` (default: keep; off when new).",
)
@with_appcontext
def platform_add(**opts: Any) -> None:
    """Register a platform by hand (Open edX, or any platform without Dynamic Registration)."""
    spec = platform_service.PlatformSpec(
        issuer=opts["issuer"].strip(),
        client_id=opts["client_id"].strip(),
        auth_login_url=opts["auth_login_url"].strip(),
        auth_token_url=opts["auth_token_url"].strip(),
        key_set_url=opts["key_set_url"].strip(),
        deployment_ids=tuple(d.strip() for d in opts["deployment_ids"]),
        name=opts["name"],
        auth_audience=opts["auth_audience"],
        frame_origins=tuple(opts["frame_origins"]),
        auto_approve=opts["auto_approve"],
    )
    with get_db().session() as session:
        try:
            reg = platform_service.add_platform(session, spec)
        except platform_service.PlatformError as exc:
            _fail(str(exc))
        deployments = ", ".join(d.deployment_id for d in reg.deployments) or "none yet"
        click.echo(f"registered {reg.issuer} / {reg.client_id} (deployments: {deployments})")
    if not spec.deployment_ids:
        click.echo(
            "note: no --deployment-id given; the first launch will wait for "
            "`lti-tool platform approve` unless --auto-approve is set"
        )


@platform_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_appcontext
def platform_list(as_json: bool) -> None:
    """List registrations and their deployments."""
    with get_db().session() as session:
        rows: list[dict[str, Any]] = [
            {
                "issuer": r.issuer,
                "client_id": r.client_id,
                "name": r.name,
                "source": r.source,
                "auth_login_url": r.auth_login_url,
                "auth_token_url": r.auth_token_url,
                "key_set_url": r.key_set_url,
                "frame_origins": r.frame_origins,
                "auto_approve": r.auto_approve,
                "deployments": [
                    {"deployment_id": d.deployment_id, "status": d.status} for d in r.deployments
                ],
            }
            for r in platform_service.list_platforms(session)
        ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no platform registered; see `lti-tool platform add --help`")
    for r in rows:
        click.echo(f"{r['issuer']}  client_id={r['client_id']}  ({r['source']}) {r['name']}")
        for d in r["deployments"]:
            click.echo(f"    deployment {d['deployment_id']}: {d['status']}")


@platform_group.command("approve")
@click.option("--issuer", required=True)
@click.option("--deployment-id", required=True)
@click.option("--client-id", default=None, help="Needed when the issuer has several.")
@with_appcontext
def platform_approve(issuer: str, deployment_id: str, client_id: str | None) -> None:
    """Activate a pending deployment so its launches are accepted."""
    with get_db().session() as session:
        try:
            platform_service.approve_deployment(session, issuer, deployment_id, client_id)
        except platform_service.PlatformError as exc:
            _fail(str(exc))
    click.echo(f"deployment {deployment_id} of {issuer} is active")


@platform_group.command("remove")
@click.option("--issuer", required=True)
@click.option("--client-id", default=None)
@click.option("--deployment-id", default=None, help="Remove only this deployment.")
@with_appcontext
def platform_remove(issuer: str, client_id: str | None, deployment_id: str | None) -> None:
    """Remove a registration (with its deployments) or one deployment."""
    with get_db().session() as session:
        try:
            what = platform_service.remove_platform(session, issuer, client_id, deployment_id)
        except platform_service.PlatformError as exc:
            _fail(str(exc))
    click.echo(f"removed {what}")


@platform_group.command("set-org")
@click.option("--issuer", required=True)
@click.option("--deployment-id", required=True)
@click.option("--org", "org_slug", required=True, help="Organization slug (created if new).")
@click.option("--org-name", default=None)
@click.option("--client-id", default=None)
@with_appcontext
def platform_set_org(**opts: Any) -> None:
    """Group a deployment under an organization."""
    with get_db().session() as session:
        try:
            org = platform_service.set_organization(
                session,
                opts["issuer"],
                opts["deployment_id"],
                opts["org_slug"],
                opts["org_name"],
                opts["client_id"],
            )
        except platform_service.PlatformError as exc:
            _fail(str(exc))
        click.echo(f"deployment {opts['deployment_id']} belongs to {org.slug} ({org.name})")


@platform_group.command("invite")
@click.option("--note", default="", help="Who the invitation is for.")
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 90))
@with_appcontext
def platform_invite(note: str, days: int) -> None:
    """Print a one-time Dynamic Registration URL for a platform administrator."""
    with get_db().session() as session:
        token = platform_service.create_invitation(session, note, days)
    click.echo(f"{_settings().base_url}/lti/register?invite={token}")
    click.echo(f"(usable once, for {days} days)", err=True)


# -- keys -----------------------------------------------------------------------------


@main.group("keys")
def keys_group() -> None:
    """The tool's signing keys."""


@keys_group.command("rotate")
@with_appcontext
def keys_rotate() -> None:
    """Make a new signing key; the previous one stays published in the JWKS."""
    with get_db().session() as session:
        key = rotate_keys(session, _settings().key_encryption_key)
        kid = key.kid
    click.echo(f"new current key {kid}; the previous key stays in the JWKS until the next rotation")


@keys_group.command("list")
@with_appcontext
def keys_list() -> None:
    """Print the published JWKS."""
    with get_db().session() as session:
        click.echo(json.dumps(published_jwks(session), indent=2))


# -- coordinators ---------------------------------------------------------------------


@main.group("coordinators")
def coordinators_group() -> None:
    """Grant the coordinator role (never taken from the LMS)."""


@coordinators_group.command("add")
@click.option("--issuer", required=True)
@click.option("--sub", required=True, help="The person's LTI subject id on that platform.")
@click.option("--org", default=None, help="Limit to one organization (slug).")
@click.option("--note", default="")
@with_appcontext
def coordinators_add(issuer: str, sub: str, org: str | None, note: str) -> None:
    with get_db().session() as session:
        try:
            grant = coord_service.add_coordinator(session, issuer, sub, org, note)
        except coord_service.GrantError as exc:
            _fail(str(exc))
        scope = "program-wide" if grant.scope == "*" else f"for {grant.scope}"
    click.echo(f"coordinator {scope}: {issuer} / {sub}")


@coordinators_group.command("list")
@with_appcontext
def coordinators_list() -> None:
    with get_db().session() as session:
        for g in coord_service.list_coordinators(session):
            click.echo(f"{g.issuer}  {g.sub}  {g.scope}  {g.note}")


@coordinators_group.command("remove")
@click.option("--issuer", required=True)
@click.option("--sub", required=True)
@click.option("--org", default=None)
@with_appcontext
def coordinators_remove(issuer: str, sub: str, org: str | None) -> None:
    with get_db().session() as session:
        count = coord_service.remove_coordinator(session, issuer, sub, org)
    click.echo(f"removed {count} grant(s)")


# -- users (Law 25 requests) ----------------------------------------------------------


@main.group("users")
def users_group() -> None:
    """Serve access and deletion requests."""


@users_group.command("find")
@click.argument("text")
@with_appcontext
def users_find(text: str) -> None:
    """Find people by part of their name or email: prints issuer and sub (for
    `coordinators add`, `users export` and `users erase`)."""
    with get_db().session() as session:
        found = user_service.find_users(session, text)
    if not found:
        _fail(f"nobody whose name or email contains {text!r} has launched the tool")
    for user in found:
        name = user.name or " ".join(p for p in (user.given_name, user.family_name) if p)
        click.echo(f"{user.issuer}  {user.sub}  {name or '-'}  {user.email or '-'}")


@users_group.command("export")
@click.option("--issuer", required=True)
@click.option("--sub", required=True)
@with_appcontext
def users_export(issuer: str, sub: str) -> None:
    """Print, as JSON, everything the tool holds about a person."""
    with get_db().session() as session:
        try:
            data = user_service.export_user(session, issuer, sub)
        except user_service.UserNotFound as exc:
            _fail(str(exc))
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@users_group.command("erase")
@click.option("--issuer", required=True)
@click.option("--sub", required=True)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def users_erase(issuer: str, sub: str, yes: bool) -> None:
    """Delete a person's data."""
    if not yes:
        click.confirm(f"Erase every record of {issuer} / {sub}?", abort=True)
    with get_db().session() as session:
        try:
            user_service.erase_user(session, issuer, sub)
        except user_service.UserNotFound as exc:
            _fail(str(exc))
    click.echo("erased")


# -- content --------------------------------------------------------------------------


@main.group("content")
def content_group() -> None:
    """Course content: check, preview, publish, versions."""


def _content_root(path: str | None) -> Path:
    return Path(path or os.environ.get("CONTENT_PATH") or Path.cwd()).resolve()


@content_group.command("check", with_appcontext=False)
@click.option("--path", "path", default=None, help="Content folder (default: CONTENT_PATH or .)")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "github", "json"]),
    default="text",
    show_default=True,
)
def content_check(path: str | None, fmt: str) -> None:
    """Check modules/, experiments/ and badges/; exit 1 on any error."""
    root = _content_root(path)
    result = load_catalog(root)
    diagnostics = list(result.diagnostics)
    click.echo(format_diagnostics(diagnostics, fmt, result.item_count))
    sys.exit(1 if has_errors(diagnostics) else 0)


@content_group.command("preview", with_appcontext=False)
@click.option("--path", "path", default=None, help="Content folder (default: CONTENT_PATH or .)")
@click.option("--port", default=5174, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; the preview has no login, keep it on loopback.",
)
def content_preview(path: str | None, port: int, host: str) -> None:
    """Serve every module, experiment and badge of the working tree, drafts included.

    No LMS, no database: pages reload when a file changes and list the checker's
    diagnostics on top. Werkzeug's development server; stop it with Ctrl+C.
    """
    from werkzeug.serving import run_simple

    root = _content_root(path)
    app = create_preview_app(root)
    result = load_catalog_cached(root)  # the first page reuses it
    click.echo(f"content: {root} ({result.item_count} items)")
    if result.diagnostics:
        click.echo(
            f"{len(result.diagnostics)} diagnostic(s): every page lists them on top "
            "(`lti-tool content check` prints them)"
        )
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(
            f"warning: listening on {host}: anyone who can reach it reads the content", err=True
        )
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"preview: http://{shown}:{port}/  (Ctrl+C to stop)")
    run_simple(
        host,
        port,
        app,
        threaded=True,
        use_reloader=False,
        use_debugger=False,
        request_handler=PreviewRequestHandler,
    )


@content_group.command("publish")
@click.option("--allow-dirty", is_flag=True, help="Publish uncommitted files (not for releases).")
@with_appcontext
def content_publish(allow_dirty: bool) -> None:
    """Record every item's version as immutable and update content.lock."""
    root = Path(_settings().content_path).resolve()
    with get_db().session() as session:
        try:
            report = content_service.publish(session, root, allow_dirty=allow_dirty)
        except content_service.PublishError as exc:
            for d in exc.diagnostics:
                click.echo(d.text(), err=True)
            _fail(str(exc))
    for name in report.published:
        click.echo(f"published {name}")
    for name in report.drafts:
        click.echo(f"skipped {name}: status draft (preview only)")
    click.echo(
        f"{len(report.published)} published, {len(report.unchanged)} unchanged, "
        f"from commit {report.commit[:12]}; commit content.lock"
    )


@content_group.command("versions")
@click.argument("item_id")
@with_appcontext
def content_versions(item_id: str) -> None:
    """List the published versions of an item with their dates and changelog."""
    with get_db().session() as session:
        rows = content_service.versions(session, item_id)
        if not rows:
            _fail(f"no published version of {item_id}; see `lti-tool content publish`")
        for row in rows:
            log = json.loads(row.changelog or "{}")
            click.echo(
                f"{row.version}  {row.published_at:%Y-%m-%d}  {row.git_commit[:10]}  "
                f"{log.get('fr-CA', '')} / {log.get('en', '')}"
            )


# -- URLs -----------------------------------------------------------------------------


@main.group("lti")
def lti_group() -> None:
    """LTI information."""


@lti_group.command("urls")
@with_appcontext
def lti_urls() -> None:
    """Print every URL a platform administrator pastes."""
    base = _settings().base_url
    click.echo(f"Login initiation (OIDC) URL : {base}/lti/login")
    click.echo(f"Launch / redirect URL       : {base}/lti/launch")
    click.echo(f"Deep Linking URL            : {base}/lti/launch")
    click.echo(f"Public keyset (JWKS) URL    : {base}/lti/jwks")
    if _settings().registration_open:
        click.echo(f"Dynamic Registration URL    : {base}/lti/register")
    else:
        click.echo("Dynamic Registration URL    : run `lti-tool platform invite` (one-time URL)")


# -- grade delivery ---------------------------------------------------------------------


@main.command("worker")
@click.option("--once", is_flag=True, help="Deliver what is due, then exit.")
@click.option(
    "--concurrency", type=click.IntRange(1, 64), default=None, help="Score requests in flight."
)
@with_appcontext
def worker(once: bool, concurrency: int | None) -> None:
    """Deliver grades from the outbox to the platforms (run several: claims are atomic)."""
    import signal

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    tool = app.extensions["dataide_lti"]
    grade_worker = GradeWorker(
        get_db().session_factory,
        tool.ags,
        concurrency=concurrency or _settings().grade_worker_concurrency,
        poll_seconds=_settings().grade_worker_poll_seconds,
    )
    if once:
        grade_worker.run_until_idle(timeout=3600)
        grade_worker.stop()
        click.echo(json.dumps(grade_worker.delivered, sort_keys=True))
        return

    def _stop(_signum: int, _frame: object) -> None:
        grade_worker.request_stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    click.echo(f"grade worker {grade_worker.name} started", err=True)
    grade_worker.run_forever()
    grade_worker.stop()
    click.echo(
        f"grade worker stopped: {json.dumps(grade_worker.delivered, sort_keys=True)}", err=True
    )


if __name__ == "__main__":  # python -m lti_tool.cli (tests start workers this way)
    main()
