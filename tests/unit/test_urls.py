import pytest

from lti_tool.domain.launch import normalize_locale
from lti_tool.domain.urls import origin_of, platform_url_problem


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://moodle.example.org/mod/lti/auth.php", True),
        ("http://127.0.0.1:8000/jwks", True),
        ("http://localhost/jwks", True),
        ("http://[::1]:9000/x", True),
        ("http://moodle.example.org/jwks", False),
        ("http://10.0.0.5/jwks", False),
        ("ftp://example.org/x", False),
        ("/relative/path", False),
        ("", False),
        ("https://", False),
    ],
)
def test_platform_urls_must_be_https_except_loopback(url: str, ok: bool) -> None:
    assert (platform_url_problem(url) is None) is ok


def test_origin_of() -> None:
    assert origin_of("https://lms.example.org:8443/a/b?c") == "https://lms.example.org:8443"
    assert origin_of("nonsense") == ""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("fr", "fr-CA"),
        ("fr-FR", "fr-CA"),
        ("fr_CA", "fr-CA"),
        ("en-US", "en"),
        ("EN", "en"),
        ("es", None),
        ("", None),
        (None, None),
        ("french", None),
    ],
)
def test_locale_rules(raw: str | None, expected: str | None) -> None:
    assert normalize_locale(raw) == expected


@pytest.mark.parametrize(
    ("url", "base", "ok"),
    [
        (
            "https://lms.example.org/mod/lti/openid-configuration.php",
            "https://lms.example.org",
            True,
        ),
        ("https://lms.example.org/moodle/x", "https://lms.example.org/moodle/", True),
        ("https://lms.example.org.evil.test/x", "https://lms.example.org", False),
        ("https://lms.example.org:8443/x", "https://lms.example.org", False),
        ("http://lms.example.org/x", "https://lms.example.org", False),
        ("https://lms.example.org/moodle2/x", "https://lms.example.org/moodle", False),
        ("https://evil.test/?https://lms.example.org", "https://lms.example.org", False),
    ],
)
def test_configuration_url_must_be_under_its_issuer(url: str, base: str, ok: bool) -> None:
    from lti_tool.domain.urls import url_is_under

    assert url_is_under(url, base) is ok
