"""The tool's settings: one frozen object read from the environment and validated at start.

Every variable is listed, with a comment, in ``config/example.env``.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.fernet import Fernet

from lti_tool.domain.urls import is_loopback_host

ENVIRONMENTS = ("development", "production", "testing")


class SettingsError(ValueError):
    """A setting is missing or invalid; the message says which and how to fix it."""


@dataclass(frozen=True)
class Settings:
    """Validated configuration. Build it with :meth:`from_env` (or directly in tests)."""

    environment: str = "development"
    #: Public URL of the tool as platforms and browsers see it, no trailing slash.
    base_url: str = "http://127.0.0.1:5000"
    database_url: str = ""
    #: Redis for nonces, states, launch data and rate limits; empty = use the database.
    redis_url: str = ""
    secret_key: str = field(default="", repr=False)
    #: Fernet key (urlsafe base64, 32 bytes) that encrypts the tool's private keys at rest.
    key_encryption_key: str = field(default="", repr=False)
    #: Number of proxies in front of the app whose X-Forwarded-* headers are trusted.
    trusted_proxies: int = 0
    #: Seconds of clock skew tolerated on ``iat``/``exp`` of platform tokens.
    lti_leeway_seconds: int = 60
    #: Lifetime of the signed launch token (sliding, renewed on each response).
    launch_token_seconds: int = 7200
    #: Lifetime of an OIDC login state (login initiation to launch).
    login_state_seconds: int = 600
    #: Seconds for HTTP calls to platforms (connect and read).
    http_timeout_seconds: float = 5.0
    #: Largest JSON document fetched from a platform (JWKS, OpenID configuration).
    http_max_bytes: int = 256 * 1024
    #: Login initiations and registrations accepted per client IP per minute.
    rate_limit_per_minute: int = 120
    #: Open Dynamic Registration without an invitation (only allowed on loopback).
    open_registration: bool = False
    log_level: str = "INFO"
    #: Folder for the SQLite file and generated development secrets.
    instance_path: str = "instance"
    #: Folder holding modules/, experiments/ and badges/ (the course content).
    content_path: str = "."
    #: Grade delivery in each web process: ``thread`` (the embedded default) or ``off``
    #: (production runs ``lti-tool worker`` processes instead).
    grade_worker: str = "thread"
    #: Score requests each worker keeps in flight.
    grade_worker_concurrency: int = 8
    #: Seconds a worker waits between looks at the outbox when idle.
    grade_worker_poll_seconds: float = 1.0
    #: Seconds a course roster (NRPS) is kept before it is fetched again.
    roster_cache_seconds: int = 300

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @cached_property
    def base_is_loopback(self) -> bool:
        return is_loopback_host(urlsplit(self.base_url).hostname)

    @cached_property
    def secure_cookies(self) -> bool:
        """Whether cookies can carry ``Secure; SameSite=None; Partitioned``.

        Browsers treat loopback origins as potentially trustworthy, so this holds for
        https and for http on loopback hosts.
        """
        return self.base_url.startswith("https://") or self.base_is_loopback

    @cached_property
    def registration_open(self) -> bool:
        return self.open_registration or self.base_is_loopback

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate settings; raise :class:`SettingsError` on a bad value.

        Outside production, missing secrets are generated once and kept in
        ``<instance_path>/secrets.json`` so restarts keep launches and keys valid.
        """
        env = os.environ if env is None else env
        environment = env.get("DATAIDE_ENV", "development").strip() or "development"
        if environment not in ENVIRONMENTS:
            raise SettingsError(
                f"DATAIDE_ENV={environment!r}: use one of {', '.join(ENVIRONMENTS)}."
            )
        instance_path = env.get("INSTANCE_PATH", "").strip() or str(Path.cwd() / "instance")
        base_url = env.get("BASE_URL", "http://127.0.0.1:5000").strip().rstrip("/")
        database_url = env.get("DATABASE_URL", "").strip() or (
            "sqlite:///" + str(Path(instance_path) / "dataide.sqlite3")
        )
        secret_key = env.get("SECRET_KEY", "").strip()
        kek = env.get("KEY_ENCRYPTION_KEY", "").strip()
        if environment == "production":
            missing = [
                n for n, v in (("SECRET_KEY", secret_key), ("KEY_ENCRYPTION_KEY", kek)) if not v
            ]
            if missing:
                raise SettingsError(
                    f"{' and '.join(missing)} must be set in production; generate them with "
                    "`lti-tool secrets generate` and give every worker and host the same values."
                )
        elif not secret_key or not kek:
            generated = _development_secrets(Path(instance_path))
            secret_key = secret_key or generated["SECRET_KEY"]
            kek = kek or generated["KEY_ENCRYPTION_KEY"]
        settings = cls(
            environment=environment,
            base_url=base_url,
            database_url=database_url,
            redis_url=env.get("REDIS_URL", "").strip(),
            secret_key=secret_key,
            key_encryption_key=kek,
            trusted_proxies=_int(env, "TRUSTED_PROXIES", 0, 0, 10),
            lti_leeway_seconds=_int(env, "LTI_LEEWAY_SECONDS", 60, 0, 600),
            launch_token_seconds=_int(env, "LAUNCH_TOKEN_SECONDS", 7200, 60, 86400),
            login_state_seconds=_int(env, "LOGIN_STATE_SECONDS", 600, 30, 3600),
            http_timeout_seconds=float(_int(env, "HTTP_TIMEOUT_SECONDS", 5, 1, 60)),
            http_max_bytes=_int(env, "HTTP_MAX_BYTES", 256 * 1024, 1024, 10 * 1024 * 1024),
            rate_limit_per_minute=_int(env, "RATE_LIMIT_PER_MINUTE", 120, 1, 100000),
            open_registration=_bool(env, "OPEN_REGISTRATION", False),
            log_level=env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO",
            instance_path=instance_path,
            content_path=env.get("CONTENT_PATH", "").strip() or str(Path.cwd()),
            grade_worker=_choice(env, "GRADE_WORKER", "thread", ("thread", "off")),
            grade_worker_concurrency=_int(env, "GRADE_WORKER_CONCURRENCY", 8, 1, 64),
            grade_worker_poll_seconds=float(_int(env, "GRADE_WORKER_POLL_SECONDS", 1, 1, 60)),
            roster_cache_seconds=_int(env, "ROSTER_CACHE_SECONDS", 300, 0, 86400),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise :class:`SettingsError` when the combination of values cannot work."""
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SettingsError(
                f"BASE_URL={self.base_url!r}: give the tool's public URL, "
                "e.g. https://dataide.example.org"
            )
        if self.is_production and parts.scheme != "https" and not self.base_is_loopback:
            raise SettingsError(
                "BASE_URL must be https in production: LMS platforms frame the tool and "
                "browsers only keep its cookies over https."
            )
        if self.is_production and self.open_registration and not self.base_is_loopback:
            raise SettingsError(
                "OPEN_REGISTRATION=1 is refused in production: invite platforms with "
                "`lti-tool platform invite`."
            )
        try:
            Fernet(self.key_encryption_key.encode())
        except (ValueError, TypeError) as exc:
            raise SettingsError(
                "KEY_ENCRYPTION_KEY must be a Fernet key (32 url-safe base64 bytes); "
                "generate one with `lti-tool secrets generate`."
            ) from exc
        if len(self.secret_key) < 32:
            raise SettingsError("SECRET_KEY must be at least 32 characters of random data.")
        if self.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError(f"LOG_LEVEL={self.log_level!r}: use DEBUG, INFO, WARNING or ERROR.")

    def with_overrides(self, **changes: object) -> Settings:
        new = replace(self, **changes)  # type: ignore[arg-type]
        new.validate()
        return new


def generate_secrets() -> dict[str, str]:
    """Fresh values for ``SECRET_KEY`` and ``KEY_ENCRYPTION_KEY``."""
    return {
        "SECRET_KEY": secrets.token_urlsafe(48),
        "KEY_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    }


def _development_secrets(instance: Path) -> dict[str, str]:
    path = instance / "secrets.json"
    if path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise SettingsError(
                f"{path} is not valid JSON: fix it or delete it to generate new development "
                "secrets (existing launches and tool keys then stop working)."
            ) from exc
        if not isinstance(data, dict) or not {"SECRET_KEY", "KEY_ENCRYPTION_KEY"} <= data.keys():
            raise SettingsError(
                f"{path} lacks SECRET_KEY or KEY_ENCRYPTION_KEY: fix it or delete it to "
                "generate new development secrets."
            )
        return {k: str(v) for k, v in data.items()}
    instance.mkdir(parents=True, exist_ok=True)
    data = generate_secrets()
    tmp = path.with_name(f"secrets.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.chmod(tmp, 0o600)
    try:
        # Two workers starting together must end with the same secrets: first link wins.
        os.link(tmp, path)
    except FileExistsError:
        data = json.loads(path.read_text(encoding="utf-8"))
    finally:
        tmp.unlink(missing_ok=True)
    return data


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} must be a whole number.") from exc
    if not low <= value <= high:
        raise SettingsError(f"{name}={value} must be between {low} and {high}.")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={raw!r}: use 1 or 0.")


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in allowed:
        raise SettingsError(f"{name}={raw!r}: use one of {', '.join(allowed)}.")
    return raw
