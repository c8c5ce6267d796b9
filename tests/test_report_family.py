"""report.html of sweep directories and comparison folders; `actdiag report` on them."""

from __future__ import annotations

import base64
import html
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from actdiag import artifacts
from actdiag.cli import app
from actdiag.compare import compare_runs
from actdiag.report import compare_report, sweep_report, write_compare_report
from actdiag.sweep import plan_sweep, run_sweep
from tests.conftest import WORDS as NAMES
from tests.pages import ENV, Page, assert_report_rebuilds_only_report_html

WORDS = NAMES * 3
TINY = ["steps=3", "width=16", "depth=2"]
PNG = b"\x89PNG\r\n\x1a\n"
EXTERNAL = ("http://", "https://", "url(", "<script", "<link", "@import", "//cdn")


def read(folder: Path) -> str:
    return (folder / "report.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    """One tiny two-point gain sweep and a comparison of its points."""
    root = tmp_path_factory.mktemp("family")
    words = root / "words.txt"
    words.write_text("\n".join(WORDS) + "\n")
    plan = plan_sweep(None, TINY + [f"data={words}"], "1,3", [])
    sweep = run_sweep(plan, root / "sweep", jobs=1)
    points = [sweep.sweep_dir / p["run_dir"] for p in sweep.record["points"]]
    _, folder, _ = compare_runs(points, out=root / "cmp")
    return {"sweep": sweep.sweep_dir, "compare": folder}


@pytest.fixture
def sweep_dir(tmp_path: Path, made: dict) -> Path:
    """A fresh copy of the tiny sweep, free to change."""
    return Path(shutil.copytree(made["sweep"], tmp_path / "sweep"))


@pytest.fixture
def compare_dir(tmp_path: Path, made: dict) -> Path:
    """A fresh copy of the comparison folder, free to change."""
    return Path(shutil.copytree(made["compare"], tmp_path / "cmp"))


# ---------------------------------------------------------------------------
# both pages stand alone


@pytest.mark.parametrize("kind", ["sweep", "compare"])
def test_page_is_self_contained(made: dict, kind: str):
    text = read(made[kind])
    lowered = text.lower()
    for external in EXTERNAL:
        assert external not in lowered, external
    page = Page(text)
    assert not page.all("script") and not page.all("link") and not page.all("iframe")
    images = page.all("img")
    assert len(images) == 5
    for img in images:
        head, _, data = img["src"].partition(",")
        assert head == "data:image/png;base64"
        assert base64.b64decode(data).startswith(PNG)
    # every figure folds the numbers behind it
    assert len(page.all("figure")) == 5 <= len(page.all("details"))


@pytest.mark.parametrize("kind", ["sweep", "compare"])
def test_page_written_at_the_end_equals_a_rebuild(made: dict, kind: str):
    build = sweep_report if kind == "sweep" else compare_report
    assert read(made[kind]) == build(made[kind])


# ---------------------------------------------------------------------------
# the sweep page


def test_sweep_page_sections_in_order(made: dict):
    page = Page(read(made["sweep"]))
    ids = [a["id"] for a in page.all("section")]
    assert ids == ["points", "tables", "figures", "findings"]
    nav = [a["href"] for a in page.all("a") if a["href"].startswith("#")]
    assert nav == ["#" + i for i in ids]


def test_sweep_page_shows_points_tables_and_each_points_findings(made: dict):
    sweep_dir = made["sweep"]
    text = read(sweep_dir)
    record = json.loads((sweep_dir / "sweep.json").read_text())
    assert "Swept: <b>gain</b> over 1, 3." in text
    cells = [t for _, t in Page(text).cells]
    for p in record["points"]:
        assert f"{p['loss']:.4f}" in cells and f"{p['val_loss']:.4f}" in cells
        assert f"{p['grad_to_data_max']['value']:.2e}" in cells
        for layer in p["layers"]:
            assert f"{layer['act_std']:.2f}" in cells
            assert f"{layer['grad_std']:.2e}" in cells
        for u in p["update_to_data"]:
            assert f"{u['value']:+.2f}" in cells
        stats = artifacts.read_stats(sweep_dir / p["run_dir"])
        for f in stats["findings"]:
            assert html.escape(f["message"]) in text
    assert [c for c in cells if c == "ok"] == ["ok"] * 4  # points and per-point tables


def test_sweep_page_links_each_point_report_relatively(made: dict):
    sweep_dir = made["sweep"]
    record = json.loads((sweep_dir / "sweep.json").read_text())
    links = [
        a["href"]
        for a in Page(read(sweep_dir)).all("a")
        if not a["href"].startswith("#")
    ]
    expected = [f"{p['run_dir']}/report.html" for p in record["points"]]
    # once in the points table, once above the point's findings
    assert sorted(links) == sorted(expected * 2)
    for href in links:
        assert ":" not in href and not href.startswith("/")
        assert (sweep_dir / href).is_file()


def test_sweep_page_marks_saturation_past_each_points_threshold(sweep_dir: Path):
    text = read(sweep_dir)
    record = json.loads((sweep_dir / "sweep.json").read_text())
    red = [t for c, t in Page(text).cells if "unhealthy" in c.split()]
    expected = [
        f"{r['saturated']:.2f}"
        for p in record["points"]
        for r in p["layers"]
        if r["saturated"] > 5
    ]
    assert sorted(red) == sorted(expected)

    # a lower threshold in one point's stats.json turns all of its layers red
    point = record["points"][0]
    path = sweep_dir / point["run_dir"] / "stats.json"
    stats = json.loads(path.read_text())
    stats["thresholds"]["saturation_threshold"] = -1
    path.write_text(json.dumps(stats))
    red = [
        t for c, t in Page(sweep_report(sweep_dir)).cells if "unhealthy" in c.split()
    ]
    assert len(red) == len(expected) + sum(r["saturated"] <= 5 for r in point["layers"])


def test_sweep_page_without_a_point_report_or_run_says_so(sweep_dir: Path):
    record = json.loads((sweep_dir / "sweep.json").read_text())
    first, second = record["points"]
    (sweep_dir / first["run_dir"] / "report.html").unlink()
    shutil.rmtree(sweep_dir / second["run_dir"])
    text = sweep_report(sweep_dir)
    assert "no report" in text and 'href="' + first["run_dir"] not in text
    assert "No findings: its run directory could not be read." in text


def test_sweep_page_without_figures_says_so(sweep_dir: Path):
    for png in sweep_dir.glob("sweep_*.png"):
        png.unlink()
    text = sweep_report(sweep_dir)
    assert text.count("picture not drawn") == 5 and "<img" not in text


# ---------------------------------------------------------------------------
# the comparison page


def test_compare_page_sections_in_order(made: dict):
    text = read(made["compare"])
    page = Page(text)
    assert [a["id"] for a in page.all("section")] == [
        "runs",
        "config",
        "tables",
        "figures",
    ]
    headings = [
        h
        for h in (
            "activations · step",
            "activation gradients · step",
            "weight gradients · step",
            "update:data (log10) · up to",
        )
    ]
    at = [text.index(h) for h in headings]
    assert at == sorted(at)
    record = json.loads((made["compare"] / "compare.json").read_text())
    assert html.escape(record["alignment"][1:]) in text


def test_compare_page_shows_config_difference_and_changes(made: dict):
    text = read(made["compare"])
    record = json.loads((made["compare"] / "compare.json").read_text())
    assert list(record["config_diff"]) == ["gain"]
    cells = [t for _, t in Page(text).cells]
    assert "gain" in cells and "1" in cells and "3" in cells
    # the second run's activation std carries its ratio against the first
    row = record["families"]["act"][0]["stats"]["std"]
    assert f"{row['values'][1]:.2f} ×{row['changes'][1]:.2f}" in cells


def crossed_cells(text: str) -> list[str]:
    return [t for c, t in Page(text).cells if "crossed" in c.split()]


def test_compare_page_marks_threshold_crossings(compare_dir: Path):
    path = compare_dir / "compare.json"
    record = json.loads(path.read_text())
    shown = {
        "act": ["std", "saturated"],
        "grad": ["std"],
        "weight": ["std", "grad_to_data"],
        "update_to_data": ["update_to_data"],
    }
    expected = sum(
        c
        for f, stats in shown.items()
        for row in record["families"][f]
        for s in stats
        for c in row["stats"][s]["crossed"]
    )
    assert len(crossed_cells(read(compare_dir))) == expected

    # a cell that crossed into unhealthy ends in !, one that came back in ok
    calm = [
        row["stats"][s]
        for f, stats in shown.items()
        for row in record["families"][f]
        for s in stats
        if not row["stats"][s]["crossed"][1]
    ]
    calm[0]["crossed"][1], calm[0]["unhealthy"][1] = True, True
    calm[1]["crossed"][1], calm[1]["unhealthy"][1] = True, False
    path.write_text(json.dumps(record))
    write_compare_report(compare_dir)
    text = read(compare_dir)
    cells = dict((t, c) for c, t in Page(text).cells)
    marked = crossed_cells(text)
    assert len(marked) == expected + 2
    assert sum(t.endswith(" !") for t in marked) >= 1
    assert sum(t.endswith(" ok") for t in marked) >= 1
    for t in marked:
        assert ("unhealthy" in cells[t].split()) == t.endswith(" !")


def test_compare_page_without_figures_says_so(compare_dir: Path):
    for png in compare_dir.glob("compare_*.png"):
        png.unlink()
    text = compare_report(compare_dir)
    assert text.count("picture not drawn") == 5 and "<img" not in text


# ---------------------------------------------------------------------------
# `actdiag report` on a sweep or a comparison


@pytest.mark.parametrize("kind", ["sweep", "compare"])
def test_cli_report_rebuilds_only_report_html(tmp_path: Path, made: dict, kind: str):
    # the same folder name: the page names its folder
    folder = Path(shutil.copytree(made[kind], tmp_path / made[kind].name))
    original = read(folder)
    assert_report_rebuilds_only_report_html(folder)
    assert read(folder) == original


@pytest.mark.parametrize(
    "make", ["missing", "file", "empty", "bad sweep", "bad compare", "no points"]
)
def test_cli_report_refuses_what_it_cannot_read(tmp_path: Path, make: str):
    target = tmp_path / "x"
    if make == "file":
        target.write_text("not a folder")
    elif make != "missing":
        target.mkdir()
    if make == "bad sweep":
        (target / "sweep.json").write_text("{not json")
    if make == "bad compare":
        (target / "compare.json").write_text("[1, 2]")
    if make == "no points":
        (target / "sweep.json").write_text('{"schema": 1}')
    result = CliRunner().invoke(app, ["report", str(target)], env=ENV)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and str(target) in result.output
    assert len(result.output.strip().splitlines()) == 1 or len(str(target)) > 60
    assert "Traceback" not in result.output
    assert not (tmp_path / "x" / "report.html").exists()


def test_sweep_page_writes_a_blown_up_loss_in_e_notation(sweep_dir: Path):
    path = sweep_dir / "sweep.json"
    record = json.loads(path.read_text())
    record["points"][0]["loss"] = 1.2e14
    path.write_text(json.dumps(record))
    cells = [t for _, t in Page(sweep_report(sweep_dir)).cells]
    assert "1.200e+14" in cells and "120000000000000.0000" not in cells
