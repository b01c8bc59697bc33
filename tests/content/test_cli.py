"""``lti-tool content check``: exit codes and the three output formats."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lti_tool.cli import main

from .support import BASE, copy_tree

FR = "modules/m01-essai/fr-CA.md"
EXP = "experiments/x01-essai/experiment.yaml"


def check(root: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["content", "check", "--path", str(root), *args])


def edit(root: Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    """The base with two errors (an unknown block, a rubric total) and one warning."""
    root = copy_tree(BASE, tmp_path / "content")
    edit(root, FR, "::: callout", "::: encadre")
    edit(root, EXP, "total_points: 7", "total_points: 8")
    edit(
        root, "modules/m01-essai/module.yaml", "{id: bilan, minutes: 5}", "{id: bilan, minutes: 9}"
    )
    return root


def test_valid_content_prints_one_summary_line() -> None:
    result = check(BASE)
    assert result.exit_code == 0, result.output
    assert result.output == "3 items checked: all good\n"


def test_errors_exit_1_with_one_line_each(broken: Path) -> None:
    result = check(broken)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines == [
        f"{EXP}:47:17: error: total_points is 8, the criteria's top levels add up to 7 [C026]",
        f"{FR}:15:5: error: unknown block 'encadre': use one of callout, caution, example, "
        "discussion, instructor, spoiler, self-check, experiment [C020]",
        "modules/m01-essai/module.yaml:8:30: warning: sections add up to 24 minutes, "
        "the duration says 20 [C041]",
        "3 items checked: 2 error(s), 1 warning(s)",
    ]
    pattern = re.compile(r"^[\w./-]+:\d+:\d+: (error|warning): .+ \[C\d{3}\]$")
    assert all(pattern.match(line) for line in lines[:-1])


def test_warnings_alone_exit_0(tmp_path: Path) -> None:
    root = copy_tree(BASE, tmp_path / "content")
    edit(
        root, "modules/m01-essai/module.yaml", "{id: bilan, minutes: 5}", "{id: bilan, minutes: 9}"
    )
    result = check(root)
    assert result.exit_code == 0
    assert result.output.splitlines()[-1] == "3 items checked: 0 error(s), 1 warning(s)"


def test_github_format(broken: Path) -> None:
    result = check(broken, "--format", "github")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"::error file={EXP},line=47,col=17,title=C026::total_points is 8, "
        "the criteria's top levels add up to 7",
        f"::error file={FR},line=15,col=5,title=C020::unknown block 'encadre': use one of "
        "callout, caution, example, discussion, instructor, spoiler, self-check, experiment",
        "::warning file=modules/m01-essai/module.yaml,line=8,col=30,title=C041::"
        "sections add up to 24 minutes, the duration says 20",
    ]


def test_github_format_is_silent_on_valid_content() -> None:
    result = check(BASE, "--format", "github")
    assert result.exit_code == 0
    assert result.output.strip() == ""


def test_json_format(broken: Path) -> None:
    result = check(broken, "--format", "json")
    assert result.exit_code == 1
    found = json.loads(result.output)
    assert isinstance(found, list)
    assert [{k: d[k] for k in ("code", "path", "line", "col", "severity")} for d in found] == [
        {"code": "C026", "path": EXP, "line": 47, "col": 17, "severity": "error"},
        {"code": "C020", "path": FR, "line": 15, "col": 5, "severity": "error"},
        {
            "code": "C041",
            "path": "modules/m01-essai/module.yaml",
            "line": 8,
            "col": 30,
            "severity": "warning",
        },
    ]
    assert all(isinstance(d["message"], str) and d["message"] for d in found)


def test_json_format_on_valid_content_is_an_empty_list() -> None:
    result = check(BASE, "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.output) == []
