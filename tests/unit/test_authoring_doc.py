"""docs/content-authoring.md stays true: every diagnostic code explained, examples that pass."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lti_tool.cli import content_group
from lti_tool.content.catalog import load_catalog
from lti_tool.content.diagnostics import CODES, Diagnostic

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "content-authoring.md"
TEXT = DOC.read_text(encoding="utf-8")

_ROW = re.compile(r"^\| (C\d{3}) \| (\w+) \| ([^|]+?) \| ([^|]+?) \|$", re.MULTILINE)
_FILE = re.compile(r"<!-- file: (\S+) -->\n```[a-z]*\n(.*?)\n```", re.DOTALL)


def test_every_diagnostic_code_is_in_the_table() -> None:
    rows = {code: (severity, title, todo) for code, severity, title, todo in _ROW.findall(TEXT)}
    missing = sorted(set(CODES) - set(rows))
    assert missing == [], f"add these codes to the table in {DOC.name}: {missing}"
    unknown = sorted(set(rows) - set(CODES))
    assert unknown == [], f"codes in {DOC.name} that diagnostics.CODES does not have: {unknown}"
    for code, (severity, title) in CODES.items():
        assert rows[code][:2] == (severity, title), f"{code}: copy severity and title from CODES"
        assert len(rows[code][2]) > 20, f"{code}: say what to do"
    assert [code for code, *_ in _ROW.findall(TEXT)] == sorted(CODES)


def test_the_annotated_examples_pass_the_checker(tmp_path: Path) -> None:
    files = _FILE.findall(TEXT)
    kinds = {path.split("/", 1)[0] for path, _ in files}
    assert kinds == {"modules", "experiments", "badges"}
    for rel, body in files:
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body + "\n", encoding="utf-8")
    # The program's issuer, which every badge names.
    (tmp_path / "badges" / "issuer.yaml").write_bytes(
        (ROOT / "badges" / "issuer.yaml").read_bytes()
    )
    result = load_catalog(tmp_path)
    assert [d.text() for d in result.diagnostics] == []
    assert result.item_count == 3
    module = result.catalog.modules["m99-exemple"]
    assert {q.type for q in module.questions} == {"single", "multiple", "true_false", "short_text"}


def test_the_sample_output_has_the_checkers_format() -> None:
    block = TEXT[TEXT.index("It prints one line per problem") :]
    block = block[block.index("```\n") + 4 : block.index("\n```", block.index("```\n") + 4)]
    *lines, summary = block.splitlines()
    for line in lines:
        match = re.fullmatch(r"(\S+):(\d+):(\d+): (error|warning): (.+) \[(C\d{3})\]", line)
        assert match, line
        path, row, col, severity, message, code = match.groups()
        assert Diagnostic(path, int(row), int(col), code, message).text() == line
        assert CODES[code][0] == severity
    assert re.fullmatch(r"\d+ items checked: \d+ error\(s\), \d+ warning\(s\)", summary)


@pytest.mark.parametrize("command", ["check", "preview", "publish", "versions"])
def test_the_documented_commands_exist(command: str) -> None:
    assert command in content_group.commands
    assert f"lti-tool content {command}" in TEXT


def test_links_to_the_format_contract() -> None:
    assert "(content-format.md)" in TEXT
    assert (ROOT / "docs" / "content-format.md").is_file()
