"""Every preset in configs/ loads, and its findings tell the lecture's story.

The stories run on the shipped names file; presets of 1,001 steps run 20 steps
here, with the update:data rule told to read those (the story shows that early).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from actdiag import artifacts, findings
from actdiag.config import load_config
from actdiag.data import DEFAULT_DATA, load_dataset
from actdiag.train import train

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
PRESETS = sorted(p.stem for p in CONFIGS.glob("*.yaml"))
SHORT = ["steps=20", "ud_min_steps=10", "ud_tail=0.5"]


@pytest.fixture(scope="module")
def dataset():
    return load_dataset(DEFAULT_DATA, 3, 42)


def diagnose(name: str, dataset, overrides=()) -> list[dict]:
    """Train a preset on the shipped data and return its findings."""
    cfg = load_config(CONFIGS / f"{name}.yaml", list(overrides))
    result = train(cfg, dataset)
    record = artifacts.stats_record(result, name, DEFAULT_DATA)
    series = {"loss": result.loss, "update_to_data": result.update_to_data}
    return findings.findings_record(record, series)["findings"]


def fired(found: list[dict], rule: str, severities=("warn", "bad")) -> list[dict]:
    """The findings of one rule at the given severities."""
    return [f for f in found if f["rule"] == rule and f["severity"] in severities]


def test_every_lecture_preset_is_shipped():
    expected = {
        "gain_1",
        "gain_3",
        "gain_0_5",
        "gain_5_3",
        "tanh_off",
        "no_fan_in",
        "lr_0_001",
        "batchnorm",
        "batchnorm_gain_0_2",
        "batchnorm_lr_1",
        "full",
    }
    assert expected <= set(PRESETS)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_loads_and_says_what_it_shows(name):
    path = CONFIGS / f"{name}.yaml"
    cfg = load_config(path, [])
    first = path.read_text().splitlines()[0]
    assert first.startswith("# ") and len(first) > 20, first
    assert cfg.steps >= 1 and 1 in cfg.snapshot_steps()


def test_full_preset_is_the_long_run():
    cfg = load_config(CONFIGS / "full.yaml", [])
    assert cfg.steps == 200_000 and cfg.lr_at(150_000) == 0.1
    assert cfg.lr_at(150_001) == 0.01


def test_gain_5_3_output_layer_grad_to_data_stands_out_at_step_1(dataset):
    found = diagnose("gain_5_3", dataset, ["steps=1"])
    outliers = fired(found, "grad_to_data")
    assert [(f["step"], f["param"]) for f in outliers] == [(1, 11)]
    # more than 100 times the median (the threshold is 10 times it)
    assert outliers[0]["value"] > 10 * outliers[0]["threshold"]
    assert not fired(found, "act_depth") and not fired(found, "grad_depth")
    assert not fired(found, "dead_units") and not fired(found, "first_loss")


def test_gain_3_saturates(dataset):
    found = diagnose("gain_3", dataset)
    saturated = fired(found, "saturation", ("bad",))
    assert [f["layer"] for f in saturated] == [1, 3, 5, 7, 9]
    assert min(f["value"] for f in saturated) > 30
    assert not fired(found, "act_depth")


def test_gain_0_5_collapses(dataset):
    found = diagnose("gain_0_5", dataset)
    shrinking = fired(found, "act_depth", ("bad",))
    assert [f["direction"] for f in shrinking] == ["shrinks"]
    assert shrinking[0]["value"] < 0.1
    assert [f["direction"] for f in fired(found, "grad_depth")] == ["grows"]
    assert not fired(found, "saturation")


def test_gain_1_shrinks_gently(dataset):
    found = diagnose("gain_1", dataset)
    shrinking = fired(found, "act_depth", ("warn",))
    assert [f["direction"] for f in shrinking] == ["shrinks"]
    assert not fired(found, "saturation") and not fired(found, "grad_depth")


def test_tanh_off_explodes_forward_and_gradients_differ_across_depth(dataset):
    found = diagnose("tanh_off", dataset)
    assert [f["direction"] for f in fired(found, "act_depth")] == ["grows"]
    spread = fired(found, "grad_depth")
    assert [f["direction"] for f in spread] == ["shrinks"]
    assert spread[0]["value"] < 1 / 4
    assert not fired(found, "saturation")


def test_no_fan_in_saturates_and_kills_units(dataset):
    found = diagnose("no_fan_in", dataset)
    assert len(fired(found, "saturation", ("bad",))) == 5
    assert fired(found, "dead_units")


@pytest.mark.parametrize("name", ["gain_1", "gain_3", "gain_0_5", "tanh_off"])
def test_one_step_presets_do_not_judge_update_to_data(name, dataset):
    found = diagnose(name, dataset)
    judged = [f for f in found if f["rule"] == "update_to_data"]
    assert [f["severity"] for f in judged] == ["info"]


def test_lr_0_001_learns_too_slowly(dataset):
    found = diagnose("lr_0_001", dataset, SHORT)
    slow = fired(found, "update_to_data")
    assert len(slow) >= 6 and all("slowly" in f["message"] for f in slow)
    assert all(f["value"] < -4 for f in slow)


def test_batchnorm_is_healthy(dataset):
    found = diagnose("batchnorm", dataset, SHORT)
    assert [f["rule"] for f in found] == ["healthy"]


@pytest.mark.parametrize("name", ["batchnorm_gain_0_2", "batchnorm_lr_1"])
def test_batchnorm_with_small_weights_or_large_lr_updates_too_fast(name, dataset):
    found = diagnose(name, dataset, SHORT)
    fast = fired(found, "update_to_data")
    assert len(fast) >= 5 and all("fast" in f["message"] for f in fast)
    assert not fired(found, "saturation") and not fired(found, "act_depth")
