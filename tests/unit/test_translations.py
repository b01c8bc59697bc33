"""Every string a person reads exists in French (fr-CA) and the catalogs are current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "lti_tool" / "translations"


def _catalog(locale: str):  # type: ignore[no-untyped-def]
    with (TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale=locale)


def test_every_message_is_translated_to_french() -> None:
    catalog = _catalog("fr_CA")
    missing = [m.id for m in catalog if m.id and (not m.string or m.fuzzy)]
    assert missing == [], "translate these in fr_CA/messages.po: " + repr(missing)


def test_placeholders_survive_translation() -> None:
    for message in _catalog("fr_CA"):
        if message.id and "%(" in str(message.id):
            for name in ("%(name)s",):
                assert (name in str(message.id)) == (name in str(message.string)), message.id


def test_catalog_matches_the_code(tmp_path: Path) -> None:
    """A string added to a template or view without `make extract-messages` fails here."""
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_l",
            "-k",
            "lazy_gettext",
            "--no-location",
            "-o",
            str(pot),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as fh:
        in_code = {m.id for m in read_po(fh) if m.id}
    in_catalog = {m.id for m in _catalog("fr_CA") if m.id}
    assert in_code - in_catalog == set(), "run `make extract-messages` and translate"
