"""Tests of `actdiag sweep`: value lists, points, layout, failures, identity."""

from __future__ import annotations

import json
import os
import random
import threading
from pathlib import Path

import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from actdiag import artifacts, sweep
from actdiag.cli import app
from actdiag.config import load_config
from actdiag.errors import ActdiagError
from actdiag.runner import run_experiment
from actdiag.tables import sweep_tables

TINY = ["steps=3", "width=16", "depth=2", "snapshots=[1]"]
PNGS = [
    "sweep_depth.png",
    "sweep_act_hist.png",
    "sweep_grad_hist.png",
    "sweep_update_to_data.png",
    "sweep_loss.png",
]


@pytest.fixture
def words(tmp_path: Path) -> Path:
    """A small words file: 200 made-up names over 8 letters."""
    rng = random.Random(0)
    names = [
        "".join(rng.choice("abcdefgh") for _ in range(rng.randint(2, 6)))
        for _ in range(200)
    ]
    path = tmp_path / "words.txt"
    path.write_text("\n".join(names) + "\n")
    return path


def tiny(words: Path) -> list[str]:
    """`--set` overrides for a run of a few milliseconds on `words`."""
    return [*TINY, f"data={words}"]


def invoke(args: list[str]):
    """Run the CLI with a pinned console width."""
    return CliRunner().invoke(app, args, env={"COLUMNS": "120"})


def set_args(overrides: list[str]) -> list[str]:
    return [arg for text in overrides for arg in ("--set", text)]


# ---------------------------------------------------------------------------
# value lists


def test_values_keep_their_labels():
    axis = sweep.parse_values("gain", "0.5, 1,5/3,3", "--gains")
    assert axis.labels == ("0.5", "1", "5/3", "3")
    assert axis.values == (0.5, 1.0, 5 / 3, 3.0)
    assert axis.source == "--gains"


def test_values_are_typed_per_key():
    assert sweep.parse_axis("batchnorm=off,on", "--param").values == (False, True)
    assert sweep.parse_axis("depth=2,4", "--param").values == (2, 4)
    assert sweep.parse_axis("decay_after=null,10", "--param").values == (None, 10)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gain=5//3", "--param gain: key 'gain': '5//3' is not a number"),
        ("gain=a", "'a' is not a number"),
        ("gain=", "--param gain: empty value in ''"),
        ("gain=0.5,,1", "empty value in '0.5,,1'"),
        ("gain=1,", "empty value"),
        ("gain=0.5,1/2", "value '1/2' repeats '0.5'"),
        ("batchnorm=on,true", "value 'true' repeats 'on'"),
        ("depth=2,2.5", "'2.5' is not a whole number"),
        ("gian=1,2", "unknown key 'gian'; did you mean 'gain'?"),
        ("gain", "write KEY=V1,V2"),
        ("snapshots=1,2", "'snapshots' cannot be swept"),
    ],
)
def test_bad_value_lists(text: str, message: str):
    with pytest.raises(ActdiagError) as info:
        sweep.parse_axis(text, "--param")
    assert message in str(info.value)


def test_a_key_swept_twice_or_not_at_all():
    with pytest.raises(ActdiagError, match="'gain' is swept twice"):
        sweep.sweep_axes("1,2", ["gain=3,4"])
    with pytest.raises(ActdiagError, match="nothing to sweep"):
        sweep.sweep_axes(None, [])


# ---------------------------------------------------------------------------
# points


def test_points_are_the_cartesian_product_first_axis_slowest(words: Path):
    plan = sweep.plan_sweep(None, tiny(words), "0.5,5/3", ["batchnorm=off,on"])
    labels = [p.label for p in plan.points]
    assert labels == [
        "gain=0.5 batchnorm=off",
        "gain=0.5 batchnorm=on",
        "gain=5/3 batchnorm=off",
        "gain=5/3 batchnorm=on",
    ]
    assert [p.dirname for p in plan.points][2] == "gain=5_3,batchnorm=off"
    cfg = plan.points[3].config
    assert (cfg.gain, cfg.batchnorm, cfg.width, cfg.steps) == (5 / 3, True, 16, 3)
    assert plan.base.gain == 5 / 3 and plan.base.batchnorm is False


def test_precedence_file_set_steps_then_swept(tmp_path: Path, words: Path):
    config = tmp_path / "c.yaml"
    config.write_text("gain: 2\nlr: 0.5\nsteps: 7\n")
    plan = sweep.plan_sweep(
        config, [*tiny(words), "lr=0.2"], None, ["embedding=4,6"], steps=5
    )
    assert plan.name == "c"
    assert [
        (p.config.lr, p.config.steps, p.config.gain, p.config.embedding)
        for p in plan.points
    ] == [(0.2, 5, 2.0, 4), (0.2, 5, 2.0, 6)]


@pytest.mark.parametrize(
    ("sets", "gains", "params", "steps", "message"),
    [
        (
            [],
            None,
            ["context=0,2"],
            None,
            "--param context: key 'context' is 0; it must be >= 1",
        ),
        (
            [],
            "0.5,-1",
            [],
            None,
            "--gains: key 'gain' is -1.0; it must be a number > 0",
        ),
        (["gain=2"], "0.5,1", [], None, "--set gain: 'gain' is also swept"),
        ([], None, ["steps=1,2"], 3, "--steps: 'steps' is also swept"),
        ([], "1,2", [], 0, "--steps: key 'steps' is 0"),
        (
            [],
            None,
            ["batch_size=1,2", "batchnorm=on,off"],
            None,
            "batchnorm needs >= 2",
        ),
    ],
)
def test_out_of_range_values_stop_the_plan(words, sets, gains, params, steps, message):
    with pytest.raises(ActdiagError) as info:
        sweep.plan_sweep(None, [f"data={words}", *sets], gains, params, steps)
    assert message in str(info.value)


def test_a_missing_words_file_stops_the_plan(tmp_path: Path, words: Path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(ActdiagError, match="nope.txt: data file not found"):
        sweep.plan_sweep(None, TINY, None, [f"data={words},{missing}"])


def test_colliding_dirnames_get_the_point_index():
    cfg = load_config(None, TINY)
    points = [
        sweep.Point(0, (("data", "a/b"),), cfg),
        sweep.Point(1, (("data", "a_b"),), cfg),
    ]
    assert sweep.unique_dirnames(points) == ["data=a_b", "data=a_b-1"]


def test_job_counts_cap_threads_and_processes(monkeypatch):
    monkeypatch.setattr(sweep, "available_cores", lambda: 8)
    assert sweep.job_counts(None, 4) == (4, 2)
    assert sweep.job_counts(None, 20) == (8, 1)
    assert sweep.job_counts(3, 20) == (3, 2)
    assert sweep.job_counts(16, 2) == (2, 4)


# ---------------------------------------------------------------------------
# the whole command


def test_sweep_layout_tables_and_figures(tmp_path: Path, words: Path):
    out = tmp_path / "s"
    result = invoke(
        [
            "sweep",
            "--gains",
            "0.5,5/3",
            *set_args(tiny(words)),
            "--out",
            str(out),
            "--jobs",
            "2",
        ]
    )
    assert result.exit_code == 0, result.output

    # one ordinary run directory per point, readable like any run
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [
        "gain=0.5",
        "gain=5_3",
    ]
    for name, gain in (("gain=0.5", 0.5), ("gain=5_3", 5 / 3)):
        stats = artifacts.read_stats(out / name)
        assert stats["config"]["gain"] == gain and stats["steps"] == 3
        assert artifacts.read_series(out / name)["loss"].shape == (3,)
    for png in PNGS:
        assert (out / png).stat().st_size > 10_000, png

    # the summary file
    record = sweep.read_sweep(out)
    assert record["schema"] == sweep.SCHEMA and record["keys"] == ["gain"]
    assert record["complete"] is True
    assert [
        (p["label"], p["labels"], p["run_dir"], p["status"]) for p in record["points"]
    ] == [
        ("gain=0.5", {"gain": "0.5"}, "gain=0.5", "ok"),
        ("gain=5/3", {"gain": "5/3"}, "gain=5_3", "ok"),
    ]
    point = record["points"][1]
    stats = artifacts.read_stats(out / "gain=5_3")
    assert point["loss"] == stats["loss"] and point["at_step"] == 1
    first = stats["snapshots"][0]
    assert [r["act_std"] for r in point["layers"]] == [
        a["std"] for a in first["activations"]
    ]
    assert [r["grad_std"] for r in point["layers"]] == [
        g["std"] for g in first["gradients"]
    ]
    top = max(w["grad_to_data"] for w in first["weights"])
    assert point["grad_to_data_max"]["value"] == top
    assert [u["value"] for u in point["update_to_data"]] == [
        p["update_to_data"] for p in stats["params"] if len(p["shape"]) == 2
    ]

    # the terminal: tables with a column per point, the directory last
    assert "activation std (saturated) · step 1" in result.stdout
    assert "gain=5/3" in result.stdout and "points" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == str(out)


def test_default_sweep_dir_is_fresh_and_json_goes_to_stdout(
    tmp_path, words, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    first = artifacts.make_run_dir("sweep", None)
    result = invoke(["sweep", "--gains", "1", *set_args(tiny(words)), "-q", "--json"])
    assert result.exit_code == 0, result.output
    made = Path(result.stderr.strip().splitlines()[-1])
    assert made.parent == Path("runs") and made.name.startswith("sweep-")
    assert made != first
    assert json.loads(result.stdout) == sweep.read_sweep(made)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_failing_and_a_diverging_point_do_not_stop_the_others(tmp_path, words):
    out = tmp_path / "s"
    result = invoke(
        [
            "sweep",
            "--param",
            "device=cpu,cuda",
            "--param",
            "lr=0.1,1e38",
            *set_args(tiny(words)),
            "--out",
            str(out),
        ]
    )
    assert result.exit_code == 1, result.output
    record = sweep.read_sweep(out)
    statuses = {p["label"]: p["status"] for p in record["points"]}
    assert statuses == {
        "device=cpu lr=0.1": "ok",
        "device=cpu lr=1e38": "diverged",
        "device=cuda lr=0.1": "failed",
        "device=cuda lr=1e38": "failed",
    }
    failed = record["points"][2]
    assert "torch sees no CUDA device" in failed["error"]
    assert failed["loss"] is None and failed["layers"] == []
    assert record["points"][1]["error"] == "the loss was not finite at step 2"
    assert record["complete"] is False
    assert "incomplete: 3 of 4 points" in result.stderr
    assert "diverged" in result.stdout and "failed" in result.stdout
    for png in PNGS:
        assert (out / png).is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gains", "5//3"], "error: --gains: key 'gain': '5//3' is not a number"),
        (["--gains", "a"], "'a' is not a number"),
        (["--gains", ""], "--gains: empty value"),
        (["--param", "gian=1,2"], "unknown key 'gian'; did you mean 'gain'?"),
        (["--param", "context=0,2"], "key 'context' is 0; it must be >= 1"),
        (["--gains", "1,1.0"], "value '1.0' repeats '1'"),
        ([], "nothing to sweep"),
        (
            ["--gains", "1", "--at", "2"],
            "--at 2: gain=1 records no snapshot there (only at 1, 3)",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, words, args, message):
    out = tmp_path / "s"
    result = invoke(["sweep", *args, *set_args(tiny(words)), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_an_existing_out_dir_is_refused(tmp_path, words):
    out = tmp_path / "s"
    out.mkdir()
    result = invoke(
        ["sweep", "--gains", "1", *set_args(tiny(words)), "--out", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert "already exists" in result.stderr and list(out.iterdir()) == []


# ---------------------------------------------------------------------------
# a point equals the same config run alone


def strip_timing(stats: dict) -> dict:
    """stats.json without what may differ between two identical runs."""
    return {k: v for k, v in stats.items() if k not in ("seconds", "name")}


def test_a_point_equals_the_same_config_run_alone(tmp_path: Path, words: Path):
    sets = [*tiny(words), "steps=30", "snapshots=[1,20]", "gain=0.5"]
    plan = sweep.plan_sweep(None, sets, None, ["batchnorm=off,on"])
    done = sweep.run_sweep(plan, tmp_path / "s", jobs=2, plots=False)

    # both train with the config's `threads`, so they match to the bit
    for point, entry in zip(plan.points, done.record["points"], strict=True):
        alone = run_experiment(
            point.config, "alone", tmp_path / f"alone{point.index}", plots=False
        )
        swept = done.sweep_dir / entry["run_dir"]
        a, b = artifacts.read_stats(swept), artifacts.read_stats(alone.run_dir)
        assert strip_timing(a) == strip_timing(b), point.label
        sa, sb = artifacts.read_series(swept), artifacts.read_series(alone.run_dir)
        for key in ("loss", "update_to_data"):
            assert sa[key].dtype == sb[key].dtype
            assert sa[key].tobytes() == sb[key].tobytes(), (point.label, key)


# ---------------------------------------------------------------------------
# pieces that need no training


def test_run_point_skips_when_the_sweep_was_stopped(monkeypatch, words):
    stop = threading.Event()
    stop.set()
    monkeypatch.setattr(sweep, "_stop", stop)
    cfg = load_config(None, tiny(words))
    status = sweep.run_point(0, cfg, "p", Path("never-made"))
    assert status["status"] == "not run" and not Path("never-made").exists()


def test_summary_of_a_crafted_run():
    hist = {"edges": [0.0, 1.0], "density": [1.0]}
    snapshot = {
        "step": 1,
        "activations": [
            {"layer": 1, "kind": "tanh", "std": 0.5, "saturated": 2.0, "hist": hist}
        ],
        "gradients": [{"layer": 1, "kind": "tanh", "std": 1e-3, "hist": hist}],
        "weights": [
            {"param": 1, "shape": [3, 4], "grad_to_data": 0.2},
            {"param": 3, "shape": [4, 2], "grad_to_data": 2.5},
            {"param": 5, "shape": [2, 2], "grad_to_data": None},
        ],
    }
    stats = {
        "steps": 9,
        "loss": 2.0,
        "val_loss": 2.1,
        "diverged": None,
        "seconds": 1.0,
        "snapshots": [snapshot],
        "params": [
            {"param": 0, "shape": [4], "update_to_data": -2.0},
            {"param": 1, "shape": [3, 4], "update_to_data": -3.5},
            {"param": 3, "shape": [4, 2], "update_to_data": None},
        ],
    }
    summary = sweep.point_summary(stats, None)
    assert summary["layers"] == [
        {"layer": 1, "kind": "tanh", "act_std": 0.5, "saturated": 2.0, "grad_std": 1e-3}
    ]
    assert summary["grad_to_data_max"] == {"param": 3, "shape": [4, 2], "value": 2.5}
    assert summary["update_to_data"] == [
        {"param": 1, "shape": [3, 4], "value": -3.5},
        {"param": 3, "shape": [4, 2], "value": None},
    ]
    assert sweep.point_summary(stats, 1)["at_step"] == 1
    assert sweep.point_summary(stats, 7)["layers"] == []
    empty = sweep.point_summary(None, None)
    assert empty["loss"] is None and empty["layers"] == []


def test_tables_mark_points_without_records():
    ok = {
        "label": "gain=5/3",
        "status": "ok",
        "steps": 3,
        "loss": 2.5,
        "val_loss": 2.6,
        "at_step": 1,
        "grad_to_data_max": {"param": 3, "shape": [4, 2], "value": 2.33},
        "layers": [
            {
                "layer": 1,
                "kind": "tanh",
                "act_std": 0.75,
                "saturated": 20.25,
                "grad_std": 4.2e-4,
            }
        ],
        "update_to_data": [{"param": 3, "shape": [4, 2], "value": -3.14159}],
    }
    bad = {
        "label": "gain=3",
        "status": "failed",
        "steps": None,
        "loss": None,
        "val_loss": None,
        "at_step": None,
        "grad_to_data_max": None,
        "layers": [],
        "update_to_data": [],
    }
    console = Console(width=120, record=True)
    for table in sweep_tables({"points": [ok, bad]}):
        console.print(table)
    text = console.export_text()
    assert "0.75 (20.25%)" in text and "4.20e-04" in text and "-3.14" in text
    assert "2.33e+00" in text and "failed" in text
    row = next(line for line in text.splitlines() if line.startswith("│ gain=3"))
    assert row.count("n/a") == 5


LECTURE = os.environ.get("ACTDIAG_LECTURE_NAMES")


@pytest.mark.skipif(
    not LECTURE, reason="set ACTDIAG_LECTURE_NAMES to the lecture's names.txt"
)
def test_the_gain_5_3_point_prints_the_lecture_table(tmp_path: Path):
    config = Path(__file__).resolve().parent.parent / "configs" / "gain_5_3.yaml"
    out = tmp_path / "s"
    result = invoke(
        [
            "sweep",
            str(config),
            "--gains",
            "0.5,5/3",
            "--steps",
            "1",
            "--set",
            f"data={LECTURE}",
            "--out",
            str(out),
            "-q",
        ]
    )
    assert result.exit_code == 0, result.output
    point = sweep.read_sweep(out)["points"][1]
    assert point["label"] == "gain=5/3" and f"{point['loss']:.4f}" == "3.2962"
    assert [
        (f"{r['act_std']:.2f}", f"{r['saturated']:.2f}", f"{r['grad_std']:.6e}")
        for r in point["layers"]
    ] == [
        ("0.75", "20.25", "4.205588e-04"),
        ("0.69", "8.38", "3.991179e-04"),
        ("0.67", "6.62", "3.743020e-04"),
        ("0.66", "5.47", "3.290473e-04"),
        ("0.66", "6.12", "3.054035e-04"),
    ]
    assert f"{point['grad_to_data_max']['value']:.6e}" == "2.328203e+00"
    assert "0.75 (20.25%)" in result.stdout
