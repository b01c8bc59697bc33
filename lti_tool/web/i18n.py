"""Language: fr-CA first, English second.

A launch's locale (already chosen by the launch rules and the person's switch) wins;
before a launch is valid only Accept-Language counts, never unverified claims.
"""

from __future__ import annotations

from flask import Flask, g, request
from flask_babel import Babel

from lti_tool.domain.launch import DEFAULT_LOCALE, SUPPORTED_LOCALES, normalize_locale

BABEL_LOCALES = {"fr-CA": "fr_CA", "en": "en"}


def accept_language_locale() -> str:
    """Best supported locale from Accept-Language, else fr-CA."""
    best = request.accept_languages.best_match(["fr-CA", "fr", "en"])
    return normalize_locale(best) or DEFAULT_LOCALE


def current_locale() -> str:
    """The page's locale: an explicit choice for this request, else Accept-Language."""
    chosen = g.get("locale")
    if chosen in SUPPORTED_LOCALES:
        return str(chosen)
    return accept_language_locale()


def _babel_locale() -> str:
    return BABEL_LOCALES[current_locale()]


def init_i18n(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "fr_CA")
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")
    Babel(app, locale_selector=_babel_locale)

    @app.context_processor
    def _language() -> dict[str, object]:
        locale = current_locale()
        return {
            "html_lang": locale,
            "other_locale": "en" if locale == "fr-CA" else "fr-CA",
        }
