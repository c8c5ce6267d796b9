"""actdiag compare: pure comparison functions, their pictures and the command."""

from __future__ import annotations

import gc
import json
import math
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from actdiag import compare as cmp
from actdiag.artifacts import STATS
from actdiag.cli import app
from actdiag.config import load_config
from actdiag.errors import ActdiagError
from actdiag.runner import run_experiment

ENV = {"COLUMNS": "120", "NO_COLOR": "1"}
TINY = ["steps=4", "width=8", "snapshots=[2]"]


# ---------------------------------------------------------------------------
# fixtures: tiny real runs


@pytest.fixture(scope="module")
def words(tmp_path_factory) -> Path:
    rng = random.Random(0)
    names = [
        "".join(rng.choice("abcdefg") for _ in range(rng.randint(3, 6)))
        for _ in range(200)
    ]
    path = tmp_path_factory.mktemp("data") / "words.txt"
    path.write_text("\n".join(names) + "\n")
    return path


def make_run(root: Path, name: str, words: Path, *overrides: str) -> Path:
    sets = [f"data={words}", *(f"{s}" for s in TINY), *overrides]
    cfg = load_config(None, sets)
    return run_experiment(cfg, name, root / name, plots=False).run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory, words) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    return {
        "d2": make_run(root, "d2", words, "depth=2"),
        "d2g3": make_run(root, "d2g3", words, "depth=2", "gain=3"),
        "d3bn": make_run(root, "d3bn", words, "depth=3", "batchnorm=on"),
    }


@pytest.fixture
def copies(tmp_path, runs) -> dict[str, Path]:
    """Copies of the runs in a fresh folder, free to break or fill."""
    return {k: Path(shutil.copytree(v, tmp_path / k)) for k, v in runs.items()}


def invoke(*args: str):
    result = CliRunner(env=ENV).invoke(app, ["compare", *args])
    shown = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result, shown


# ---------------------------------------------------------------------------
# pure functions on crafted inputs


def test_config_diff_keeps_only_keys_that_differ():
    configs = [
        {"gain": 1.0, "lr": 0.1, "depth": 5},
        {"gain": 3.0, "lr": 0.1, "depth": 5},
        {"gain": 1.0, "lr": 0.1, "depth": 3},
    ]
    assert cmp.config_diff(configs) == {"gain": [1.0, 3.0, 1.0], "depth": [5, 5, 3]}
    assert cmp.config_diff([{"a": 1}, {"a": 1}]) == {}


def test_run_labels_name_the_differing_keys_else_the_folders():
    paths = [Path("x/a"), Path("y/b")]
    assert cmp.run_labels(paths, {"gain": [5 / 3, 3.0]}) == ["gain=5/3", "gain=3"]
    assert cmp.run_labels(paths, {"batchnorm": [False, True]}) == [
        "batchnorm=off",
        "batchnorm=on",
    ]
    assert cmp.run_labels(paths, {}) == ["a", "b"]
    assert cmp.run_labels([Path("x/a"), Path("y/a")], {}) == ["x/a", "y/a"]
    long = {"data": ["/a/very/long/path.txt", "/another/long/path.txt"]}
    assert cmp.run_labels(paths, long) == ["a", "b"]


def test_change_is_a_difference_or_a_ratio():
    assert cmp.change(3.0, 1.0, "difference") == 2.0
    assert cmp.change(3.0, 1.5, "ratio") == 2.0
    assert cmp.change(None, 1.0, "ratio") is None
    assert cmp.change(1.0, None, "difference") is None
    assert cmp.change(1.0, 0.0, "ratio") is None


@pytest.mark.parametrize(
    "stat, value, median, bad",
    [
        ("saturated", 5.0, None, False),
        ("saturated", 5.01, None, True),
        ("saturated", 4.99, None, False),
        ("update_to_data", -4.0, None, False),
        ("update_to_data", -2.0, None, False),
        ("update_to_data", -4.01, None, True),
        ("update_to_data", -1.99, None, True),
        ("grad_to_data", 0.1, 0.01, False),
        ("grad_to_data", 0.1001, 0.01, True),
        ("grad_to_data", 0.1001, None, False),
        ("std", 100.0, None, False),
        ("saturated", None, None, False),
    ],
)
def test_unhealthy_at_below_and_above_each_threshold(stat, value, median, bad):
    assert cmp.unhealthy(stat, value, median) is bad


def test_stat_cell_flags_crossings_against_the_first_run():
    rows = [{"saturated": 4.0}, {"saturated": 6.0}, {"saturated": 4.5}, None]
    cell = cmp.stat_cell("saturated", "difference", rows, [None] * 4)
    assert cell["values"] == [4.0, 6.0, 4.5, None]
    assert cell["changes"] == [None, 2.0, 0.5, None]
    assert cell["unhealthy"] == [False, True, False, False]
    assert cell["crossed"] == [False, True, False, False]
    assert cell["moved"]

    # unhealthy in both runs: red, but no crossing
    both = cmp.stat_cell(
        "saturated",
        "difference",
        [{"saturated": 9.0}, {"saturated": 20.0}],
        [None, None],
    )
    assert both["unhealthy"] == [True, True] and both["crossed"] == [False, False]


def test_moved_uses_the_stated_tolerances():
    assert not cmp.moved("std", "ratio", [None, 1.0 + cmp.MOVED_RATIO / 2])
    assert cmp.moved("std", "ratio", [None, 1.0 + 2 * cmp.MOVED_RATIO])
    assert not cmp.moved("saturated", "difference", [None, cmp.MOVED_POINTS / 2])
    assert cmp.moved("saturated", "difference", [None, -2 * cmp.MOVED_POINTS])
    assert not cmp.moved("update_to_data", "difference", [None, 0.005])
    assert cmp.moved("update_to_data", "difference", [None, 0.02])


def test_align_pads_the_shorter_runs_with_none():
    rows = cmp.align([[1, 2], [10, 20, 30]])
    assert rows == [[1, 10], [2, 20], [None, 30]]


def test_update_records_match_a_slow_loop():
    rng = np.random.default_rng(0)
    ud = rng.normal(-3, 0.5, size=(50, 3)).astype(np.float32)
    ud[40:, 2] = np.nan
    ud[47, 0] = np.nan
    params = [
        {"param": 0, "shape": [4, 2]},
        {"param": 1, "shape": [2]},
        {"param": 2, "shape": [2, 2]},
    ]
    run = {"stats": {"params": params}, "series": {"update_to_data": ud}}
    records = cmp.update_records(run, step=48)

    # slow version: the last 10 % of the first 48 steps, finite values only
    window = int(48 * 0.1)
    assert [r["param"] for r in records] == [0, 2]
    for r in records:
        tail = [float(v) for v in ud[48 - window : 48, r["param"]] if math.isfinite(v)]
        expected = pytest.approx(sum(tail) / len(tail)) if tail else None
        assert r["update_to_data"] == expected
    assert records[0]["update_to_data"] is not None
    assert records[1]["update_to_data"] is None


def test_bin_means_match_a_slow_loop():
    from actdiag.plots import bin_means

    rng = np.random.default_rng(1)
    y = rng.normal(size=(503, 2))
    y[10:20, 1] = np.nan
    steps, means = bin_means(y, max_points=50)
    size = math.ceil(503 / 50)
    assert len(steps) == len(means) == math.ceil(503 / size)
    for b in range(len(means)):
        block = y[b * size : (b + 1) * size]
        for j in range(2):
            finite = [v for v in block[:, j] if math.isfinite(v)]
            expected = sum(finite) / len(finite) if finite else math.nan
            assert means[b, j] == pytest.approx(expected, nan_ok=True)
        lo, hi = b * size + 1, min((b + 1) * size, 503)
        assert steps[b] == pytest.approx((lo + hi) / 2)

    # short series are drawn as they are
    short_steps, short = bin_means(y[:50], max_points=100)
    assert np.array_equal(short_steps, np.arange(1, 51)) and short is not None


def test_long_series_are_handled_without_per_step_loops():
    from actdiag.plots import bin_means

    ud = np.random.default_rng(2).normal(-3, 1, size=(200_000, 19)).astype(np.float32)
    params = [{"param": i, "shape": [2, 2]} for i in range(19)]
    run = {"stats": {"params": params}, "series": {"update_to_data": ud}}
    start = time.perf_counter()
    records = cmp.update_records(run, step=200_000)
    steps, means = bin_means(ud)
    assert time.perf_counter() - start < 1.0
    assert len(records) == 19 and means.shape == (cmp_max_points(), 19)
    assert records[0]["update_to_data"] == pytest.approx(
        float(ud[-20_000:, 0].mean()), rel=1e-4
    )


def cmp_max_points() -> int:
    from actdiag.plots import MAX_POINTS

    return MAX_POINTS


# ---------------------------------------------------------------------------
# comparison of real runs


def test_compare_of_mixed_shapes_aligns_by_order(runs):
    loaded = cmp.load_runs([runs["d2"], runs["d3bn"]])
    record = cmp.compare(loaded)
    first, second = (r["stats"] for r in loaded)

    # depth 2 watches 2 tanh layers, depth 3 with batchnorm watches 3
    acts = record["families"]["act"]
    assert len(acts) == 3
    assert acts[0]["names"] == ["layer 1 (tanh)", "layer 2 (tanh)"]
    assert acts[2]["names"] == [None, "layer 8 (tanh)"]
    std = acts[2]["stats"]["std"]
    assert std["values"][0] is None and std["changes"][1] is None
    assert acts[2]["moved"]

    # values are the runs' own, at their last snapshot
    snap1, snap2 = first["snapshots"][-1], second["snapshots"][-1]
    assert acts[1]["stats"]["saturated"]["values"] == [
        snap1["activations"][1]["saturated"],
        snap2["activations"][1]["saturated"],
    ]
    ratio = snap2["gradients"][0]["std"] / snap1["gradients"][0]["std"]
    assert record["families"]["grad"][0]["stats"]["std"]["changes"][1] == pytest.approx(
        ratio
    )

    # weights align by their order among 2-D parameters: 4 against 5
    weights = record["families"]["weight"]
    assert len(weights) == 5 and weights[4]["names"][0] is None
    assert [m["param"] for m in (w["members"][1] for w in weights)] == [0, 1, 4, 7, 10]
    assert len(record["families"]["update_to_data"]) == 5
    assert record["config_diff"] == {"depth": [2, 3], "batchnorm": [False, True]}
    assert [r["step"] for r in record["runs"]] == [4, 4]
    assert cmp.shapes_differ(record)


def test_compare_at_an_earlier_snapshot(runs):
    loaded = cmp.load_runs([runs["d2"], runs["d2g3"]])
    record = cmp.compare(loaded, step=2)
    assert [r["step"] for r in record["runs"]] == [2, 2]
    snap = loaded[1]["stats"]["snapshots"][0]
    assert snap["step"] == 2
    assert (
        record["families"]["act"][0]["stats"]["std"]["values"][1]
        == snap["activations"][0]["std"]
    )
    with pytest.raises(
        ActdiagError, match="no snapshot at step 3.*every run holds: 2, 4"
    ):
        cmp.compare(loaded, step=3)


def test_only_changed_drops_rows_that_did_not_move(runs):
    same = cmp.compare(cmp.load_runs([runs["d2"], runs["d2"]]))
    assert all(not rows for rows in cmp.only_changed(same)["families"].values())
    assert all(rows for rows in same["families"].values())

    moved = cmp.compare(cmp.load_runs([runs["d2"], runs["d2g3"]]))
    kept = cmp.only_changed(moved)["families"]["act"]
    assert kept and all(r["moved"] for r in kept)


def test_sweep_directories_expand_to_their_points(tmp_path, runs):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    for name in ("d2g3", "d2"):
        shutil.copytree(runs[name], sweep / name)
    assert [p.name for p in cmp.expand([sweep])] == ["d2", "d2g3"]

    # sweep.json, when present, gives the order
    points = [{"run_dir": "d2g3"}, {"run_dir": "d2"}, {"run_dir": "not-yet"}]
    (sweep / cmp.SWEEP).write_text(json.dumps({"points": points}))
    assert [p.name for p in cmp.expand([sweep])] == ["d2g3", "d2"]

    # an unreadable sweep.json falls back to the subfolders
    (sweep / cmp.SWEEP).write_text("{not json")
    assert [p.name for p in cmp.expand([sweep])] == ["d2", "d2g3"]


# ---------------------------------------------------------------------------
# the command


def test_cli_prints_tables_and_writes_pictures(copies):
    result, shown = invoke(str(copies["d2"]), str(copies["d3bn"]))
    assert result.exit_code == 0, shown
    lines = result.stdout.strip().splitlines()
    folder = Path(lines[-1])
    assert folder.parent == copies["d2"].parent and folder.name.startswith("compare-")
    for line in (
        "config difference",
        "batchnorm",
        "alignment:",
        "activations · step 4",
        "activation gradients",
        "weight gradients",
        "update:data (log10)",
        "layer 1 | 2 (tanh)",
        "layer - | 8 (tanh)",
        "saturated above 5 %",
    ):
        assert line in result.stdout, shown
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "compare.json",
        "compare_act_depth.png",
        "compare_act_hist.png",
        "compare_grad_hist.png",
        "compare_update_to_data.png",
        "compare_weight_hist.png",
        "report.html",
    ]
    for name in names:
        assert (folder / name).stat().st_size > 1000
    saved = json.loads((folder / "compare.json").read_text())
    assert saved["config_diff"]["depth"] == [2, 3]

    # a second comparison never reuses the folder
    again, shown = invoke(str(copies["d2"]), str(copies["d3bn"]))
    assert again.exit_code == 0, shown
    assert Path(again.stdout.strip().splitlines()[-1]) != folder


PICTURES = [
    "compare_act_depth.png",
    "compare_act_hist.png",
    "compare_grad_hist.png",
    "compare_update_to_data.png",
    "compare_weight_hist.png",
]


def pictures(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.png"))}


def test_pictures_drawn_in_two_processes_equal_those_drawn_in_one(
    runs, tmp_path, monkeypatch
):
    from actdiag import plots

    if not plots._can_fork():
        pytest.skip("needs fork and two cores")
    paths = [runs["d2"], runs["d3bn"]]
    _, split, written = cmp.compare_runs(paths, out=tmp_path / "split")
    monkeypatch.setattr(plots, "_can_fork", lambda: False)
    _, serial, _ = cmp.compare_runs(paths, out=tmp_path / "serial")
    assert sorted(p.name for p in written) == PICTURES
    assert all(p.parent == split for p in written)
    assert pictures(split) == pictures(serial)
    assert sorted(pictures(split)) == PICTURES
    # the collector, frozen across the fork, is thawed again
    assert gc.get_freeze_count() == 0


def test_a_histogram_drawn_on_reused_panels_equals_one_drawn_afresh(runs, tmp_path):
    from actdiag import plots

    loaded = cmp.load_runs([runs["d2"], runs["d3bn"]])
    record = cmp.compare(loaded)
    snaps = cmp.pick_snapshots(loaded, None)
    hists = {f: cmp.aligned(loaded, snaps, f) for f in ("act", "grad")}
    assert len(hists["act"]) == len(hists["grad"])
    paths = {f: tmp_path / f"after_act_{f}.png" for f in hists}
    plots.plot_compare_hists(record, hists, paths)
    alone = {"grad": tmp_path / "alone_grad.png"}
    plots.plot_compare_hists(record, {"grad": hists["grad"]}, alone)
    assert paths["grad"].read_bytes() == alone["grad"].read_bytes()
    assert paths["act"].read_bytes() != alone["grad"].read_bytes()


def test_a_failed_drawing_child_is_redrawn_here(runs, tmp_path, monkeypatch):
    import os

    from actdiag import plots

    if not plots._can_fork():
        pytest.skip("needs fork and two cores")
    monkeypatch.setattr(plots, "_child_jobs", lambda jobs: os._exit(1))
    _, folder, _ = cmp.compare_runs([runs["d2"], runs["d2g3"]], out=tmp_path / "c")
    assert sorted(pictures(folder)) == PICTURES
    assert all(len(b) > 1000 for b in pictures(folder).values())
    assert gc.get_freeze_count() == 0


def test_compare_loads_neither_torch_nor_pyplot():
    # torch alone takes seconds to import; compare only reads files and draws
    modules = "actdiag.cli, actdiag.compare, actdiag.plots, actdiag.report"
    code = (
        f"import sys, {modules}\n"
        "print([m for m in ('torch', 'matplotlib.pyplot') if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_cli_json_prints_only_json(copies, tmp_path):
    out = tmp_path / "cmp"
    result, shown = invoke(
        str(copies["d2"]), str(copies["d2g3"]), "--json", "--out", str(out)
    )
    assert result.exit_code == 0, shown
    record = json.loads(result.stdout)
    assert record["config_diff"] == {"gain": [5 / 3, 3.0]}
    assert [r["label"] for r in record["runs"]] == ["gain=5/3", "gain=3"]
    assert set(record["families"]) == {"act", "grad", "weight", "update_to_data"}
    assert result.stderr.strip().endswith(str(out))
    assert (out / "compare.json").is_file()


def test_cli_step_picks_a_snapshot_every_run_holds(copies):
    result, shown = invoke(
        str(copies["d2"]), str(copies["d2g3"]), "--step", "2", "--json"
    )
    assert result.exit_code == 0, shown
    assert [r["step"] for r in json.loads(result.stdout)["runs"]] == [2, 2]

    missing, shown = invoke(str(copies["d2"]), str(copies["d2g3"]), "--step", "3")
    assert missing.exit_code == 2, shown
    assert (
        "no snapshot at step 3" in missing.stderr
        and str(copies["d2"]) in missing.stderr
    )


def test_cli_only_changed(copies):
    result, shown = invoke(str(copies["d2"]), str(copies["d2"]), "--only-changed")
    assert result.exit_code == 0, shown
    assert result.stdout.count("(no row moved)") == 4, shown
    assert "identical" in result.stdout


def test_cli_expands_a_sweep_directory(tmp_path, runs):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    for name in ("d2", "d2g3"):
        shutil.copytree(runs[name], sweep / name)
    result, shown = invoke(str(sweep), "--json")
    assert result.exit_code == 0, shown
    assert [Path(r["path"]).name for r in json.loads(result.stdout)["runs"]] == [
        "d2",
        "d2g3",
    ]
    assert Path(result.stderr.strip()).parent == sweep


# ---------------------------------------------------------------------------
# bad input: one line naming the path, exit 2, nothing written


def truncate(run: Path) -> Path:
    path = run / STATS
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    return path


def corrupt(run: Path) -> Path:
    path = run / STATS
    record = json.loads(path.read_text())
    record["snapshots"] = {"step": 4}
    path.write_text(json.dumps(record))
    return path


def newer(run: Path) -> Path:
    path = run / STATS
    record = json.loads(path.read_text())
    record["schema"] = 99
    path.write_text(json.dumps(record))
    return path


def no_series(run: Path) -> Path:
    path = run / "series.npz"
    path.unlink()
    return path


def bad_series(run: Path) -> Path:
    path = run / "series.npz"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    return path


@pytest.mark.parametrize(
    "breaker, expected",
    [
        (truncate, "corrupt or truncated stats file"),
        (corrupt, "corrupt stats file (snapshots is not a list)"),
        (newer, "stats schema 99"),
        (no_series, "missing series file"),
        (bad_series, "corrupt series file"),
    ],
)
def test_cli_rejects_a_broken_run(copies, breaker, expected):
    broken = breaker(copies["d2g3"])
    result, shown = invoke(str(copies["d2"]), str(copies["d2g3"]))
    assert result.exit_code == 2, shown
    assert result.stdout == ""
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and message.startswith("error: "), shown
    assert str(broken) in message and expected in message, shown
    assert not list(copies["d2"].parent.glob("compare-*"))


def test_cli_rejects_missing_paths_non_runs_and_single_runs(copies, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        ([str(tmp_path / "nope"), str(copies["d2"])], "no such file or directory"),
        ([str(empty), str(copies["d2"])], "not a run directory"),
        ([str(copies["d2"] / "config.yaml"), str(copies["d2"])], "not a run directory"),
        ([str(copies["d2"])], "needs at least two runs; got 1"),
    ]
    for args, words in cases:
        result, shown = invoke(*args)
        assert result.exit_code == 2, shown
        message = result.stderr.strip()
        assert len(message.splitlines()) == 1 and words in message, shown
        assert args[0] in message, shown
        assert "Traceback" not in shown
    assert not list(tmp_path.rglob("compare-*"))


def test_cli_refuses_an_existing_out_folder(copies, tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    result, shown = invoke(str(copies["d2"]), str(copies["d2g3"]), "--out", str(taken))
    assert result.exit_code == 2, shown
    assert "already exists" in result.stderr and str(taken) in result.stderr
    assert [p.name for p in taken.iterdir()] == ["keep.txt"]


# ---------------------------------------------------------------------------
# rendering of a crafted record


def crafted_record() -> dict:
    rows = [
        [
            {"layer": 1, "kind": "tanh", "std": 0.5, "saturated": 4.0},
            {"layer": 2, "kind": "tanh", "std": 0.75, "saturated": 6.0},
        ],
        [
            {"layer": 3, "kind": "tanh", "std": 0.5, "saturated": 9.0},
            {"layer": 5, "kind": "tanh", "std": 0.5, "saturated": 1.0},
        ],
        [None, {"layer": 8, "kind": "tanh", "std": 0.4, "saturated": 2.0}],
    ]
    runs = [{"label": "a", "step": 3}, {"label": "b", "step": 3}]
    return {
        "runs": runs,
        "thresholds": cmp.thresholds(),
        "families": {"act": cmp.family_rows("act", rows, [None, None])},
    }


def test_family_table_shows_changes_crossings_and_dashes():
    from rich.console import Console

    from actdiag.tables import family_table

    table = family_table(crafted_record(), "act", "activations", ["std", "saturated"])
    console = Console(width=120, record=True, color_system=None)
    console.print(table)
    text = console.export_text()
    assert "layer 1 | 2 (tanh)" in text and "layer - | 8 (tanh)" in text
    assert "0.75 ×1.50" in text
    assert "6.00 +2.00 !" in text  # newly above 5 %
    assert "1.00 -8.00 ok" in text  # back under 5 %
    assert "saturated above 5 %" in text
    row3 = [line for line in text.splitlines() if "layer - | 8" in line][0]
    cells = [c.strip() for c in row3.split("│")[1:-1]]
    assert cells == ["3", "layer - | 8 (tanh)", "std", "-", "0.40"]


def test_values_are_spelled_as_a_user_writes_them():
    from actdiag.text import show_value

    assert show_value(5 / 3) == "5/3" and show_value(-2 / 3) == "-2/3"
    assert show_value(0.5) == "0.5" and show_value(0.1) == "0.1"
    assert show_value(1.6667) == "1.667" and show_value(3.0) == "3"
    assert show_value(float("inf")) == "inf" and show_value(True) == "on"
