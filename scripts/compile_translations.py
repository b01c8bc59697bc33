"""Compile lti_tool/translations/*/LC_MESSAGES/messages.po to .mo (run by make).

Fails when a catalog has a syntax error, so a broken translation never ships.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent / "lti_tool" / "translations"


def main() -> int:
    count = 0
    for po_path in sorted(ROOT.glob("*/LC_MESSAGES/messages.po")):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as fh:
            catalog = read_po(fh, locale=po_path.parent.parent.name, abort_invalid=True)
        with mo_path.open("wb") as fh:
            write_mo(fh, catalog, use_fuzzy=False)
        count += 1
    print(f"translations: {count} catalog(s) compiled")
    return 0


if __name__ == "__main__":
    sys.exit(main())
