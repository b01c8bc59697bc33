"""Paths and helpers shared by the content checker tests."""

from __future__ import annotations

import shutil
from pathlib import Path

from lti_tool.content.diagnostics import Diagnostic

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
BASE = FIXTURES / "base"
KIND_DIRS = ("modules", "experiments", "badges")


def copy_tree(source: Path, dest: Path) -> Path:
    """Copy the content folders of ``source`` (modules/, experiments/, badges/) to ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for kind in KIND_DIRS:
        if (source / kind).is_dir():
            shutil.copytree(source / kind, dest / kind)
    return dest


def where(diagnostic: Diagnostic) -> tuple[str, str, int, int]:
    """What a fixture pins down: (code, path, line, col)."""
    return (diagnostic.code, diagnostic.path, diagnostic.line, diagnostic.col)
