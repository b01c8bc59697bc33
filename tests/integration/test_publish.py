"""Publishing content versions and resolving pins, on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import delete

from lti_tool.content.catalog import load_catalog
from lti_tool.content.lock import read_lock
from lti_tool.db import get_db
from lti_tool.models import ContentVersion
from lti_tool.services.content import PublishError, publish, resolve_pin, versions

REPO = Path(__file__).resolve().parents[2]


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.org", "-c", "user.name=Test", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def content(tmp_path: Path) -> Path:
    """A Git repository holding a copy of the shipped content, without its lock."""
    root = tmp_path / "content"
    root.mkdir()
    for kind in ("modules", "experiments", "badges"):
        shutil.copytree(REPO / kind, root / kind)
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "content")
    return root


def _version_line(path: Path) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, start=1) if line.startswith("version:"))


def _edit(root: Path, rel: str, old: str, new: str, count: int = 1) -> None:
    path = root / rel
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, count), encoding="utf-8")


def _bump(root: Path, item: str, kind_dir: str, yaml_name: str, version: str) -> None:
    rel = f"{kind_dir}/{item}/{yaml_name}"
    _edit(root, rel, "\nversion: 1.0.0", f"\nversion: {version}")
    _edit(
        root,
        rel,
        "changelog:\n",
        f"changelog:\n  - {{version: {version}, date: 2026-12-01, fr-CA: Révision., "
        "en: Revision.}\n",
    )


def test_publish_records_versions_and_lock(backend_app: Flask, content: Path) -> None:
    with get_db(backend_app).session() as session:
        # The test app recorded the locked versions at start: begin from an empty table.
        session.execute(delete(ContentVersion))
        session.commit()
        report = publish(session, content)
        assert len(report.published) == 17 and report.unchanged == []
        again = publish(session, content)
        assert again.published == [] and len(again.unchanged) == 17
        rows = versions(session, "m02-collaborer")
        assert [r.version for r in rows] == ["1.0.0"]
        assert rows[0].git_commit == report.commit
        assert '"module.yaml"' in rows[0].source and "fr-CA.md" in rows[0].source
    lock = read_lock(content)
    assert set(lock) == {i.id for i in load_catalog(content).catalog.items()}
    assert lock["x03-cyber"][0]["commit"] == report.commit


def test_changed_content_needs_a_bump(backend_app: Flask, content: Path) -> None:
    with get_db(backend_app).session() as session:
        publish(session, content)
        _edit(content, "modules/m02-collaborer/en.md", "the", "THE")
        _git(content, "commit", "-qam", "typo")
        with pytest.raises(PublishError, match="content has errors"):
            publish(session, content)
        diags = load_catalog(content).diagnostics
        line = _version_line(content / "modules/m02-collaborer/module.yaml")
        assert [(d.code, d.path, d.line, d.col) for d in diags] == [
            ("C032", "modules/m02-collaborer/module.yaml", line, 1)
        ]
        _bump(content, "m02-collaborer", "modules", "module.yaml", "1.0.1")
        _git(content, "commit", "-qam", "bump")
        report = publish(session, content)
        assert report.published == ["m02-collaborer@1.0.1"]
        assert [r.version for r in versions(session, "m02-collaborer")] == ["1.0.1", "1.0.0"]


def test_assessment_change_needs_a_major(backend_app: Flask, content: Path) -> None:
    with get_db(backend_app).session() as session:
        publish(session, content)
    rel = "experiments/x03-cyber/experiment.yaml"
    _edit(content, rel, "pass_points: 9", "pass_points: 8")
    _bump(content, "x03-cyber", "experiments", "experiment.yaml", "1.1.0")
    diags = load_catalog(content).diagnostics
    line = _version_line(content / rel)
    assert [(d.code, d.path, d.line, d.col) for d in diags] == [("C033", rel, line, 1)]
    assert "2.0.0" in diags[0].message
    _edit(content, rel, "version: 1.1.0", "version: 2.0.0", count=2)
    assert load_catalog(content).diagnostics == []


def test_republishing_a_version_with_other_content_fails(backend_app: Flask, content: Path) -> None:
    with get_db(backend_app).session() as session:
        publish(session, content)
        # Someone deletes content.lock: the database still knows what 1.0.0 was.
        (content / "content.lock").unlink()
        _edit(content, "modules/m01-maturite/fr-CA.md", "## ", "## Nouveau : ", 1)
        _edit(content, "modules/m01-maturite/en.md", "## ", "## New: ", 1)
        _git(content, "commit", "-qam", "edit")
        with pytest.raises(PublishError, match="bump its version"):
            publish(session, content)
        assert [r.version for r in versions(session, "m01-maturite")] == ["1.0.0"]


def test_uncommitted_content_is_not_published(backend_app: Flask, content: Path) -> None:
    _edit(content, "modules/m02-collaborer/en.md", "the", "the")  # no change: clean
    (content / "modules" / "m02-collaborer" / "notes.txt").write_text("draft")
    with get_db(backend_app).session() as session, pytest.raises(PublishError, match="commit"):
        publish(session, content)


def test_pins_resolve_to_published_versions(backend_app: Flask, content: Path) -> None:
    with get_db(backend_app).session() as session:
        publish(session, content)
        for version in ("1.0.1", "1.1.0", "2.0.0"):
            rel = "modules/m05-donnees/module.yaml"
            current = next(
                line
                for line in (content / rel).read_text().splitlines()
                if line.startswith("version:")
            ).split()[1]
            _edit(content, rel, f"\nversion: {current}", f"\nversion: {version}")
            _edit(
                content,
                rel,
                "changelog:\n",
                f"changelog:\n  - {{version: {version}, date: 2026-12-01, fr-CA: R., en: R.}}\n",
            )
            if version == "2.0.0":
                _edit(content, rel, "pass_ratio: 0.7", "pass_ratio: 0.8")
            _git(content, "commit", "-qam", version)
            publish(session, content)
        pick = {
            pin: resolve_pin(session, "m05-donnees", pin)
            for pin in ("1", "2", "1.0.1", ">=1.0.1,<1.1", "3", "9.9.9")
        }
        assert {k: (v.version if v else None) for k, v in pick.items()} == {
            "1": "1.1.0",
            "2": "2.0.0",
            "1.0.1": "1.0.1",
            ">=1.0.1,<1.1": "1.0.1",
            "3": None,
            "9.9.9": None,
        }
        assert resolve_pin(session, "m05-donnees", "^1.0") is None
        assert resolve_pin(session, "no-such-item", "1") is None
