"""The baseline of the launch benchmark: the least a correct LTI 1.3 tool does per launch.

Plain Flask, two endpoints, served by gunicorn with the tool's own settings file:

* ``/lti/login``: a fresh state and nonce, kept in a store shared by every worker, the
  same state cookie as the tool's, and a 302 to the platform's authorization endpoint;
* ``/lti/launch``: the state cookie must match, the state is taken (once), the RS256
  id_token is verified with PyJWT against the platform's JWKS (fetched once per process),
  the nonce must match; then a tiny HTML page.

No users, courses, templates, sessions or logging: everything the tool does on top of this
is what the benchmark prices.

The shared store matches the tool's configuration, since a login and its launch may land
on different workers (an in-process dict would fail half of the launches):

* ``sqlite:///path``: a table in a SQLite file, WAL mode and ``synchronous=NORMAL`` like the
  tool's database (the tool's default store is its SQLite database);
* ``redis://...``: ``SET ... EX`` and ``GETDEL``, like the tool's Redis store;
* ``postgresql://...``: a table in PostgreSQL (the tool with ``DATABASE_URL`` and no Redis).

Configuration comes from the environment (``bench/launch.py`` sets it): ``BENCH_BASE_URL``,
``BENCH_ISSUER``, ``BENCH_CLIENT_ID``, ``BENCH_AUTH_LOGIN_URL``, ``BENCH_KEY_SET_URL``,
``BENCH_STORE_URL`` and, for PostgreSQL, ``BENCH_PG_SCHEMA``.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import sqlite3
import time
import urllib.request
from typing import Any, Protocol
from urllib.parse import urlencode

import jwt
from flask import Flask, redirect, request
from flask.typing import ResponseReturnValue

STATE_SECONDS = 600
LEEWAY_SECONDS = 60
COOKIE_PREFIX = "lti1p3-"
PAGE = (
    "<!doctype html><html lang=fr-CA><meta charset=utf-8><title>Lancement</title>"
    "<p>minimal-launch-ok</p></html>"
)


class StateStore(Protocol):
    def put(self, state: str, nonce: str) -> None: ...

    def take(self, state: str) -> str | None:
        """The nonce of a live state, deleted at once; of two callers only one gets it."""
        ...


class SqliteStates:
    def __init__(self, path: str) -> None:
        # Autocommit: each statement is its own transaction, as short as it can be.
        self._db = sqlite3.connect(path, timeout=15, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS login_states"
            " (state TEXT PRIMARY KEY, nonce TEXT NOT NULL, expires_at REAL NOT NULL)"
        )

    def put(self, state: str, nonce: str) -> None:
        self._db.execute(
            "INSERT INTO login_states VALUES (?, ?, ?)", (state, nonce, time.time() + STATE_SECONDS)
        )

    def take(self, state: str) -> str | None:
        row = self._db.execute(
            "DELETE FROM login_states WHERE state = ? AND expires_at > ? RETURNING nonce",
            (state, time.time()),
        ).fetchone()
        return str(row[0]) if row else None


class RedisStates:
    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)
        self._redis.ping()  # a wrong URL fails the start, not every launch
        self._prefix = "bench-minimal:state:"

    def put(self, state: str, nonce: str) -> None:
        self._redis.set(self._prefix + state, nonce, ex=STATE_SECONDS)

    def take(self, state: str) -> str | None:
        value = self._redis.getdel(self._prefix + state)
        return str(value) if value is not None else None


class PostgresStates:
    def __init__(self, url: str, schema: str) -> None:
        import psycopg
        from psycopg import sql

        self._db = psycopg.connect(
            url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True
        )
        if schema:
            self._db.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS minimal_login_states"
            " (state TEXT PRIMARY KEY, nonce TEXT NOT NULL, expires_at DOUBLE PRECISION NOT NULL)"
        )

    def put(self, state: str, nonce: str) -> None:
        self._db.execute(
            "INSERT INTO minimal_login_states VALUES (%s, %s, %s)",
            (state, nonce, time.time() + STATE_SECONDS),
        )

    def take(self, state: str) -> str | None:
        row = self._db.execute(
            "DELETE FROM minimal_login_states WHERE state = %s AND expires_at > %s RETURNING nonce",
            (state, time.time()),
        ).fetchone()
        return str(row[0]) if row else None


def open_store(url: str, pg_schema: str = "") -> StateStore:
    if url.startswith("sqlite:///"):
        return SqliteStates(url.removeprefix("sqlite:///"))
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisStates(url)
    if url.startswith(("postgresql://", "postgresql+psycopg://")):
        return PostgresStates(url, pg_schema)
    raise ValueError(f"BENCH_STORE_URL {url!r}: use sqlite:///, redis:// or postgresql://")


class PlatformKeys:
    """The platform's JWKS, fetched on first use and kept for the life of the process."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._keys: dict[str, jwt.PyJWK] = {}

    def get(self, kid: str) -> jwt.PyJWK | None:
        if kid not in self._keys:
            # Unknown kid: fetch once more (a platform rotating its key); a kid still
            # unknown after that fails the launch.
            with urllib.request.urlopen(self._url, timeout=5) as answer:
                document: dict[str, Any] = json.load(answer)
            self._keys = {
                str(k["kid"]): jwt.PyJWK(k, algorithm="RS256")
                for k in document.get("keys", [])
                if k.get("kid")
            }
        return self._keys.get(kid)


def create_app() -> Flask:
    base_url = os.environ["BENCH_BASE_URL"].rstrip("/")
    issuer = os.environ["BENCH_ISSUER"]
    client_id = os.environ["BENCH_CLIENT_ID"]
    auth_login_url = os.environ["BENCH_AUTH_LOGIN_URL"]
    launch_url = base_url + "/lti/launch"
    store = open_store(os.environ["BENCH_STORE_URL"], os.environ.get("BENCH_PG_SCHEMA", ""))
    keys = PlatformKeys(os.environ["BENCH_KEY_SET_URL"])
    app = Flask(__name__)

    @app.route("/lti/login", methods=["GET", "POST"])
    def login() -> ResponseReturnValue:
        if request.values.get("iss") != issuer or not request.values.get("login_hint"):
            return "unknown platform", 400
        if request.values.get("client_id", client_id) != client_id:
            return "unknown client", 400
        state = "state-" + secrets.token_urlsafe(24)
        nonce = secrets.token_urlsafe(24)
        store.put(state, nonce)
        query = {
            "scope": "openid",
            "response_type": "id_token",
            "response_mode": "form_post",
            "prompt": "none",
            "client_id": client_id,
            "redirect_uri": launch_url,
            "state": state,
            "nonce": nonce,
            "login_hint": request.values["login_hint"],
        }
        if request.values.get("lti_message_hint"):
            query["lti_message_hint"] = request.values["lti_message_hint"]
        response = redirect(auth_login_url + "?" + urlencode(query), code=302)
        # The tool's cookie, attribute for attribute: a fair comparison sends the same bytes.
        response.set_cookie(
            COOKIE_PREFIX + state,
            state,
            max_age=STATE_SECONDS,
            path="/lti",
            httponly=True,
            secure=True,
            samesite="None",
            partitioned=True,
        )
        return response

    @app.post("/lti/launch")
    def launch() -> tuple[str, int]:
        state = request.form.get("state", "")
        id_token = request.form.get("id_token", "")
        if not state or not id_token:
            return "state and id_token required", 400
        if not hmac.compare_digest(request.cookies.get(COOKIE_PREFIX + state, ""), state):
            return "state cookie missing or different", 403
        nonce = store.take(state)
        if nonce is None:
            return "state unknown, expired or used", 409
        try:
            kid = str(jwt.get_unverified_header(id_token).get("kid", ""))
            key = keys.get(kid)
            if key is None:
                return "unknown kid", 403
            claims = jwt.decode(
                id_token,
                key,
                algorithms=["RS256"],
                audience=client_id,
                issuer=issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "nonce"]},
            )
        except jwt.InvalidTokenError as exc:
            return f"invalid id_token: {exc}", 403
        if not hmac.compare_digest(str(claims["nonce"]), nonce):
            return "nonce differs", 403
        return PAGE, 200

    return app
