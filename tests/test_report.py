"""Saturation maps, findings in the run directory, report.html and `actdiag report`."""

from __future__ import annotations

import base64
import html
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from actdiag import artifacts
from actdiag.cli import app
from actdiag.config import load_config
from actdiag.data import load_dataset
from actdiag.model import Tanh
from actdiag.probe import Probe
from actdiag.report import run_report, write_run_report
from actdiag.runner import run_experiment
from actdiag.train import train
from tests.conftest import WORDS as NAMES
from tests.pages import ENV, Page, assert_report_rebuilds_only_report_html

WORDS = NAMES * 3
TINY = ["steps=3", "width=16", "depth=2", "snapshots=[1]"]


@pytest.fixture(scope="module")
def words(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "words.txt"
    path.write_text("\n".join(WORDS) + "\n")
    return path


@pytest.fixture(scope="module")
def made(tmp_path_factory, words: Path) -> Path:
    cfg = load_config(None, TINY + [f"data={words}"])
    return run_experiment(cfg, "tiny", tmp_path_factory.mktemp("runs") / "run").run_dir


@pytest.fixture
def run_dir(tmp_path: Path, made: Path) -> Path:
    """A fresh copy of one tiny run, free to change."""
    return Path(shutil.copytree(made, tmp_path / "run"))


# ---------------------------------------------------------------------------
# the probe's saturation maps


def test_probe_maps_which_units_saturate_on_which_examples():
    x = torch.zeros((4, 3))
    x[:, 0] = 5.0  # saturated on every example: dead
    x[1, 1] = -4.0  # saturated on one example only
    x[2, 2] = 2.0  # tanh(2) = 0.964, under 0.99
    x.requires_grad_(True)
    tanh = Tanh()
    probe = Probe([(1, "tanh", tanh)], dead_threshold=0.99)
    with probe.attach():
        tanh(x).sum().backward()
    expected = np.array(
        [[abs(np.tanh(v)) > 0.99 for v in row] for row in x.detach().numpy()]
    )
    assert (probe.maps[1] == expected).all() and probe.maps[1].dtype == bool
    acts, _ = probe.records()
    assert acts[0]["dead_units"] == 1 and acts[0]["units"] == 3
    assert list(probe.saturation_maps(7)) == ["step7_layer1"]


def test_probe_keeps_no_map_for_linear_layers():
    lin = torch.nn.Identity()
    probe = Probe([(0, "linear", lin)])
    with probe.attach():
        lin(torch.full((2, 2), 5.0, requires_grad=True)).sum().backward()
    assert probe.maps == {} and probe.records()[0][0]["dead_units"] is None


def test_maps_are_kept_only_on_snapshot_steps(words: Path):
    cfg = load_config(None, TINY + [f"data={words}"])
    result = train(cfg, load_dataset(words, cfg.context, cfg.split_seed))
    assert sorted(result.saturation_maps) == [
        "step1_layer1",
        "step1_layer3",
        "step3_layer1",
        "step3_layer3",
    ]
    assert result.saturation_maps["step3_layer3"].shape == (32, 16)


# ---------------------------------------------------------------------------
# the run directory


def test_run_writes_maps_findings_and_report(run_dir: Path):
    stats = artifacts.read_stats(run_dir)
    assert stats["findings"]
    assert set(stats["thresholds"]) >= {"ud_low", "dead_threshold"}
    assert {"rule", "severity", "message", "advice"} <= set(stats["findings"][0])
    maps = artifacts.read_saturation_maps(run_dir)
    assert sorted(maps) == [(1, 1), (1, 3), (3, 1), (3, 3)]
    for snap in stats["snapshots"]:
        for a in snap["activations"]:
            dead = int(maps[(snap["step"], a["layer"])].all(axis=0).sum())
            assert a["dead_units"] == dead
            png = run_dir / artifacts.saturation_png(snap["step"], a["layer"])
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run_dir / "report.html").is_file()


def test_missing_maps_file_reads_as_none(tmp_path: Path):
    assert artifacts.read_saturation_maps(tmp_path) == {}


# ---------------------------------------------------------------------------
# report.html


def test_report_embeds_every_picture_and_fetches_nothing(run_dir: Path):
    text = (run_dir / "report.html").read_text(encoding="utf-8")
    page = Page(text)
    images = page.all("img")
    assert len(images) == len(list(run_dir.glob("*.png"))) == 12
    for img in images:
        assert img["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(img["src"].split(",", 1)[1])[:4] == b"\x89PNG"
        assert img["alt"]
    lowered = text.lower()
    for external in ("http://", "https://", "//cdn", "url(", "@import"):
        assert external not in lowered
    assert not page.all("script") and not page.all("link") and not page.all("iframe")
    assert all(a["href"].startswith("#") for a in page.all("a"))


def test_report_puts_findings_first_then_config_tables_and_pictures(run_dir: Path):
    page = Page((run_dir / "report.html").read_text(encoding="utf-8"))
    ids = [a["id"] for a in page.all("section")]
    assert ids == ["findings", "config", "tables", "training", "snapshots"]
    # 3 tables per snapshot, the update:data table, 2 config tables
    body_tables = len(page.all("table")) - len(page.all("details"))
    assert body_tables == 3 * 2 + 1 + 2
    # every picture carries the numbers behind it
    assert len(page.all("details")) == len(page.all("figure")) == 12


def test_report_shows_each_finding_and_the_config(run_dir: Path):
    text = (run_dir / "report.html").read_text(encoding="utf-8")
    stats = artifacts.read_stats(run_dir)
    for f in stats["findings"]:
        assert html.escape(f["message"]) in text
    assert "saturation_threshold" in text and "dead units" in text


def test_report_builds_findings_for_runs_written_without_them(run_dir: Path):
    path = run_dir / "stats.json"
    stats = json.loads(path.read_text())
    expected = stats.pop("findings")
    stats.pop("thresholds")
    path.write_text(json.dumps(stats))
    text = run_report(run_dir)
    assert expected[0]["message"].split(":")[0] in text


def test_report_without_pictures_says_so(tmp_path: Path, words: Path):
    cfg = load_config(None, TINY + [f"data={words}"])
    run = run_experiment(cfg, "bare", tmp_path / "bare", plots=False)
    path = write_run_report(run.run_dir)
    text = path.read_text(encoding="utf-8")
    assert "picture not drawn" in text and "<img" not in text


# ---------------------------------------------------------------------------
# the command line


def test_cli_run_prints_findings_after_the_tables(tmp_path: Path, words: Path):
    out = tmp_path / "cli"
    args = ["run", "--out", str(out), "-q", "--set", f"data={words}"]
    for item in TINY:
        args += ["--set", item]
    result = CliRunner().invoke(app, args, env=ENV)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    at = lines.index("findings")
    assert any("update:data" in line for line in lines[:at])
    assert "Not enough steps to judge update:data" in result.output[at:]
    assert lines[-1] == str(out) and (out / "report.html").is_file()


def test_cli_report_rebuilds_only_report_html(run_dir: Path):
    assert_report_rebuilds_only_report_html(run_dir)


@pytest.mark.parametrize("make", ["missing", "empty", "corrupt"])
def test_cli_report_refuses_what_is_not_a_run(tmp_path: Path, make: str):
    target = tmp_path / "x"
    if make != "missing":
        target.mkdir()
    if make == "corrupt":
        (target / "stats.json").write_text("{not json")
    result = CliRunner().invoke(app, ["report", str(target)], env=ENV)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and str(target) in result.output
    assert "Traceback" not in result.output
    assert not (target / "report.html").exists()


def test_a_diverged_run_reports_divergence(tmp_path: Path, words: Path):
    cfg = load_config(
        None, TINY + [f"data={words}", "tanh=off", "gain=20", "lr=1e6", "steps=30"]
    )
    run = run_experiment(cfg, "diverged", tmp_path / "div")
    assert run.stats["diverged"] is not None
    bad = [f for f in run.stats["findings"] if f["rule"] == "divergence"]
    assert bad and bad[0]["severity"] == "bad"
    assert run.stats["findings"][0]["rule"] == "divergence"
    assert "not finite" in (run.run_dir / "report.html").read_text(encoding="utf-8")
