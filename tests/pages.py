"""What the report tests share: a page parser, file digests and the rebuild check."""

from __future__ import annotations

import hashlib
from html.parser import HTMLParser
from pathlib import Path

from typer.testing import CliRunner

from actdiag.cli import app

ENV = {"COLUMNS": "120"}


class Page(HTMLParser):
    """The tags, attributes and text of a page, and the text of each <td>."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.cells: list[tuple[str, str]] = []  # (class, text) of each td
        self._td: list | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "td":
            self._td = [dict(attrs).get("class", ""), ""]

    def handle_endtag(self, tag):
        if tag == "td" and self._td is not None:
            self.cells.append((self._td[0], self._td[1]))
            self._td = None

    def handle_data(self, data):
        if self._td is not None:
            self._td[1] += data

    def all(self, tag: str) -> list[dict]:
        return [attrs for t, attrs in self.tags if t == tag]


def digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def assert_report_rebuilds_only_report_html(folder: Path) -> None:
    """`actdiag report FOLDER` writes report.html anew and touches nothing else."""
    (folder / "report.html").unlink()
    before = digests(folder)
    result = CliRunner().invoke(app, ["report", str(folder)], env=ENV)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(folder / "report.html")
    after = digests(folder)
    assert set(after) - set(before) == {"report.html"}
    assert {k: after[k] for k in before} == before
    assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]
