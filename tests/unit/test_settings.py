import json
from pathlib import Path

import pytest

from lti_tool.settings import Settings, SettingsError, generate_secrets


def env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"INSTANCE_PATH": str(tmp_path), **values}


def test_development_generates_and_keeps_secrets(tmp_path: Path) -> None:
    first = Settings.from_env(env(tmp_path))
    second = Settings.from_env(env(tmp_path))
    assert first.secret_key == second.secret_key
    assert first.key_encryption_key == second.key_encryption_key
    stored = json.loads((tmp_path / "secrets.json").read_text())
    assert stored["SECRET_KEY"] == first.secret_key
    assert (tmp_path / "secrets.json").stat().st_mode & 0o077 == 0


def test_production_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="SECRET_KEY and KEY_ENCRYPTION_KEY must be set"):
        Settings.from_env(
            env(tmp_path, DATAIDE_ENV="production", BASE_URL="https://dataide.example.org")
        )
    assert not (tmp_path / "secrets.json").exists()


def test_production_requires_https(tmp_path: Path) -> None:
    secrets = generate_secrets()
    with pytest.raises(SettingsError, match="https"):
        Settings.from_env(
            env(
                tmp_path, DATAIDE_ENV="production", BASE_URL="http://dataide.example.org", **secrets
            )
        )
    ok = Settings.from_env(
        env(tmp_path, DATAIDE_ENV="production", BASE_URL="https://dataide.example.org/", **secrets)
    )
    assert ok.base_url == "https://dataide.example.org"
    assert ok.secure_cookies and not ok.registration_open


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("LTI_LEEWAY_SECONDS", "abc", "whole number"),
        ("LTI_LEEWAY_SECONDS", "9999", "between 0 and 600"),
        ("DATAIDE_ENV", "staging", "DATAIDE_ENV"),
        ("BASE_URL", "ftp://x", "BASE_URL"),
        ("KEY_ENCRYPTION_KEY", "short", "Fernet"),
        ("SECRET_KEY", "short", "at least 32"),
        ("OPEN_REGISTRATION", "maybe", "use 1 or 0"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL"),
    ],
)
def test_bad_values_say_what_to_fix(tmp_path: Path, name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env(tmp_path, **{name: value}))


def test_loopback_http_gets_secure_cookies_and_open_registration(tmp_path: Path) -> None:
    s = Settings.from_env(env(tmp_path, BASE_URL="http://127.0.0.1:5000"))
    assert s.secure_cookies and s.registration_open
    s = Settings.from_env(env(tmp_path, BASE_URL="http://dataide.lan:5000"))
    assert not s.secure_cookies and not s.registration_open


def test_production_refuses_open_registration(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="OPEN_REGISTRATION"):
        Settings.from_env(
            env(
                tmp_path,
                DATAIDE_ENV="production",
                BASE_URL="https://dataide.example.org",
                OPEN_REGISTRATION="1",
                **generate_secrets(),
            )
        )


@pytest.mark.parametrize("content", ["{not json", '{"SECRET_KEY": "x"}', "[]"])
def test_damaged_development_secrets_say_what_to_do(tmp_path: Path, content: str) -> None:
    (tmp_path / "secrets.json").write_text(content)
    with pytest.raises(SettingsError, match="delete it"):
        Settings.from_env(env(tmp_path))
