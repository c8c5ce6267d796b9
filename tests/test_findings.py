"""The diagnosis rules on crafted statistics, at, above and below each threshold."""

from __future__ import annotations

import math

import numpy as np
import pytest

from actdiag import findings
from actdiag.config import load_config
from actdiag.errors import ActdiagError

T = dict(findings.DEFAULTS)


def act(
    layer: int,
    std: float = 0.6,
    saturated: float | None = 1.0,
    dead_units: int | None = 0,
    kind: str = "tanh",
) -> dict:
    """An activation record as the probe writes it."""
    return {
        "layer": layer,
        "kind": kind,
        "mean": 0.0,
        "std": std,
        "saturated": saturated,
        "dead_units": dead_units,
        "units": 100,
    }


def grad(layer: int, std: float = 1e-3) -> dict:
    """A gradient record as the probe writes it."""
    return {"layer": layer, "kind": "tanh", "mean": 0.0, "std": std}


def weight(param: int, ratio: float | None) -> dict:
    """A weight record with a grad:data ratio."""
    return {
        "param": param,
        "shape": [10, 10],
        "mean": 0.0,
        "std": 1e-3,
        "grad_to_data": ratio,
    }


def snap(step: int = 1, acts=None, grads=None, weights=None) -> dict:
    """A snapshot record of a healthy five-layer network unless told otherwise."""
    layers = (1, 3, 5, 7, 9)
    return {
        "step": step,
        "loss": 3.3,
        "lr": 0.1,
        "activations": [act(i) for i in layers] if acts is None else acts,
        "gradients": [grad(i) for i in layers] if grads is None else grads,
        "weights": [weight(i, 5e-3) for i in range(4)] if weights is None else weights,
    }


PARAMS = [
    {"param": i, "name": f"layer {i}.weight", "shape": [10, 10]} for i in range(5)
]


def stats(snapshots=None, steps: int = 200, diverged=None) -> dict:
    """A stats.json record around the given snapshots."""
    return {
        "schema": 1,
        "config": {},
        "steps": steps,
        "diverged": diverged,
        "data": {"vocab_size": 27},
        "params": PARAMS,
        "snapshots": snapshots if snapshots is not None else [snap()],
    }


def series(steps: int = 200, ud: float = -3.0, loss0: float = 3.3) -> dict:
    """Loss and update:data series with constant values."""
    loss = np.full(steps, 2.5, np.float32)
    loss[0] = loss0
    return {"loss": loss, "update_to_data": np.full((steps, 5), ud, np.float32)}


# ---------------------------------------------------------------------------
# saturation


@pytest.mark.parametrize(
    "value, severity",
    [
        (4.99, None),
        (5.0, None),
        (5.01, "warn"),
        (25.0, "warn"),
        (25.01, "bad"),
    ],
)
def test_saturation_at_above_and_below_the_threshold(value, severity):
    out = findings.saturation(snap(acts=[act(1, saturated=value)]), T)
    assert [f["severity"] for f in out] == ([severity] if severity else [])
    if severity:
        assert out[0]["layer"] == 1 and out[0]["value"] == value
        assert out[0]["threshold"] == 5.0 and "gain" in out[0]["advice"]


def test_saturation_threshold_comes_from_the_thresholds():
    out = findings.saturation(
        snap(acts=[act(1, saturated=3.0)]), {**T, "saturation_threshold": 2.5}
    )
    assert len(out) == 1 and out[0]["threshold"] == 2.5


def test_saturation_skips_layers_without_a_saturation_number():
    linear = act(0, saturated=None, kind="linear")
    assert findings.saturation(snap(acts=[linear]), T) == []


# ---------------------------------------------------------------------------
# activation and gradient std across depth


def _acts(first: float, last: float) -> list[dict]:
    return [act(1, std=first), act(3, std=(first + last) / 2), act(5, std=last)]


@pytest.mark.parametrize(
    "last, direction",
    [
        (1.8, None),
        (1 / 1.8, None),
        (1.81, "grows"),
        (1 / 1.81, "shrinks"),
        (1.0, None),
    ],
)
def test_act_depth_at_above_and_below_the_factor(last, direction):
    out = findings.act_depth(snap(acts=_acts(1.0, last)), T)
    assert [f.get("direction") for f in out] == ([direction] if direction else [])
    if direction:
        assert out[0]["value"] == pytest.approx(last)
        assert out[0]["threshold"] == 1.8


def test_act_depth_is_bad_far_beyond_the_factor():
    out = findings.act_depth(snap(acts=_acts(1.0, 0.05)), T)
    assert out[0]["severity"] == "bad" and "raise the" in out[0]["advice"]


def test_act_depth_needs_two_layers_with_a_std():
    one = [act(1, std=1.0), act(3, std=None)]
    assert findings.act_depth(snap(acts=one), T) == []


@pytest.mark.parametrize(
    "last, direction",
    [
        (4e-3, None),
        (0.25e-3, None),
        (4.01e-3, "grows"),
        (0.249e-3, "shrinks"),
    ],
)
def test_grad_depth_at_above_and_below_the_factor(last, direction):
    grads = [grad(1, 1e-3), grad(3, 2e-3), grad(5, last)]
    out = findings.grad_depth(snap(grads=grads), T)
    assert [f.get("direction") for f in out] == ([direction] if direction else [])
    if direction == "grows":
        assert "vanish" in out[0]["message"]
    if direction == "shrinks":
        assert "explod" in out[0]["message"]


# ---------------------------------------------------------------------------
# grad:data outlier


@pytest.mark.parametrize("times, fires", [(9.99, False), (10.0, False), (10.01, True)])
def test_grad_to_data_outlier_against_the_median(times, fires):
    ratios = [1e-3, 2e-3, 2e-3, 3e-3, 2e-3 * times]  # median 2e-3
    weights = [weight(i, r) for i, r in enumerate(ratios)]
    out = findings.grad_to_data_outlier(snap(weights=weights), PARAMS, T)
    assert [f["param"] for f in out] == ([4] if fires else [])
    if fires:
        assert out[0]["threshold"] == pytest.approx(2e-2)
        assert out[0]["name"] == "layer 4.weight" and "10x" in out[0]["message"]


def test_grad_to_data_outlier_is_exact_against_a_loop():
    ratios = [1e-3, 4e-3, 2e-3, 0.5, 3e-3]
    weights = [weight(i, r) for i, r in enumerate(ratios)]
    median = sorted(ratios)[len(ratios) // 2]
    loop = [i for i, r in enumerate(ratios) if r > 10 * median]
    out = findings.grad_to_data_outlier(snap(weights=weights), PARAMS, T)
    assert [f["param"] for f in out] == loop == [3]


def test_grad_to_data_outlier_skips_undefined_ratios():
    weights = [weight(0, None), weight(1, 1e-3), weight(2, 1e-3), weight(3, 1e-3)]
    assert findings.grad_to_data_outlier(snap(weights=weights), PARAMS, T) == []


# ---------------------------------------------------------------------------
# dead units


@pytest.mark.parametrize(
    "count, severity",
    [
        (0, None),
        (None, None),
        (1, "warn"),
        (10, "warn"),
        (11, "bad"),
    ],
)
def test_dead_units_per_layer(count, severity):
    out = findings.dead(snap(acts=[act(3, dead_units=count)]), T)
    assert [f["severity"] for f in out] == ([severity] if severity else [])
    if severity:
        assert out[0]["layer"] == 3 and out[0]["value"] == count
        assert f"{count} of 100 units" in out[0]["message"]


# ---------------------------------------------------------------------------
# update:data over the last part of training


def test_update_to_data_needs_enough_steps():
    out = findings.update_to_data(PARAMS, np.full((99, 5), -6.0), T)
    assert [(f["severity"], f["value"]) for f in out] == [("info", 99)]
    assert "Not enough steps" in out[0]["message"]


@pytest.mark.parametrize(
    "level, rule",
    [
        (-4.0, None),
        (-4.01, "slow"),
        (-2.0, None),
        (-1.99, "fast"),
        (-3.0, None),
        (-5.01, "slow"),
    ],
)
def test_update_to_data_at_above_and_below_the_band(level, rule):
    ud = np.full((100, 5), -3.0)
    ud[:, 2] = level
    out = findings.update_to_data(PARAMS, ud, T)
    assert [f["param"] for f in out] == ([2] if rule else [])
    if rule == "slow":
        assert "slowly" in out[0]["message"] and out[0]["threshold"] == -4.0
        assert out[0]["severity"] == ("bad" if level < -5 else "warn")
    if rule == "fast":
        assert "fast" in out[0]["message"] and out[0]["threshold"] == -2.0


def test_update_to_data_reads_only_the_tail():
    ud = np.full((1000, 5), -3.0)
    ud[:900, 1] = -8.0  # far off early, fine over the last 10%
    ud[-100:, 3] = -1.0  # fine early, too fast over the last 10%
    ud[-50:, 0] = np.nan  # undefined steps are left out of the mean
    out = findings.update_to_data(PARAMS, ud, T)
    assert [f["param"] for f in out] == [3]
    loop = sum(ud[i, 3] for i in range(900, 1000)) / 100
    assert out[0]["value"] == pytest.approx(loop)


def test_update_to_data_skips_one_dimensional_params():
    params = [{"param": 0, "name": "layer 0.bias", "shape": [10]}]
    assert findings.update_to_data(params, np.full((200, 1), -8.0), T) == []


# ---------------------------------------------------------------------------
# first loss, divergence, undefined


@pytest.mark.parametrize(
    "excess, severity",
    [
        (0.49, None),
        (0.5, None),
        (0.51, "warn"),
        (2.01, "bad"),
        (-1.0, None),
    ],
)
def test_first_loss_against_a_uniform_guess(excess, severity):
    uniform = -math.log(1 / 27)
    out = findings.first_loss(np.array([uniform + excess, 2.0]), 27, T)
    assert [f["severity"] for f in out] == ([severity] if severity else [])
    if severity:
        assert out[0]["threshold"] == pytest.approx(uniform + 0.5)
        assert "3.2958" in out[0]["message"]


def test_divergence_is_bad_and_names_the_step():
    out = findings.divergence(stats(diverged=17))
    assert out[0]["severity"] == "bad" and "step 17" in out[0]["message"]
    assert findings.divergence(stats()) == []


def test_undefined_statistics_say_why():
    s = snap(
        acts=[act(1, std=None)],
        grads=[grad(1, None)],
        weights=[{**weight(0, None), "reason": "the weight has zero spread"}],
    )
    record = stats([s])
    record["params"] = [{**PARAMS[0], "undefined_steps": 3, "reason": "zero spread"}]
    out = findings.undefined(record)
    assert len(out) == 4 and {f["severity"] for f in out} == {"info"}
    assert any("the weight has zero spread" in f["message"] for f in out)
    assert out[-1]["params"] == [0] and out[-1]["value"] == 3
    assert "0 (3)" in out[-1]["message"] and "zero spread" in out[-1]["message"]


# ---------------------------------------------------------------------------
# all rules together


def test_a_healthy_run_says_it_is_healthy():
    out = findings.diagnose(stats(), series(), T)
    assert [f["rule"] for f in out] == ["healthy"]
    assert out[0]["severity"] == "info" and "Healthy" in out[0]["message"]


def test_only_info_findings_still_healthy():
    out = findings.diagnose(stats(steps=5), series(steps=5), T)
    assert [f["rule"] for f in out] == ["healthy", "update_to_data"]


def test_diagnose_orders_by_severity_and_keeps_a_rule_together():
    sick = snap(acts=[act(1, saturated=40.0), act(3, saturated=6.0, std=0.1)])
    later = snap(step=200, acts=[act(1, saturated=7.0), act(3, saturated=6.0)])
    out = findings.diagnose(stats([sick, later]), series(ud=-5.5), T)
    severities = [findings.SEVERITIES.index(f["severity"]) for f in out]
    assert severities == sorted(severities)
    warned = [f["rule"] for f in out if f["severity"] == "warn"]
    for rule in set(warned):
        at = [i for i, r in enumerate(warned) if r == rule]
        assert at == list(range(at[0], at[-1] + 1)), warned  # one run per rule
    assert warned.count("saturation") == 3
    assert {f["rule"] for f in out if f["severity"] == "bad"} >= {"update_to_data"}
    assert "healthy" not in [f["rule"] for f in out]


def test_every_finding_has_the_stats_json_keys():
    out = findings.diagnose(stats(diverged=3), series(loss0=9.0, ud=-1.0), T)
    for f in out:
        assert {"rule", "severity", "value", "threshold", "message", "advice"} <= set(f)
        assert f["severity"] in findings.SEVERITIES


def test_thresholds_come_from_the_config_with_defaults():
    record = stats()
    record["config"] = {"ud_low": -5.0, "gain": 1.0}
    t = findings.findings_record(record, series())["thresholds"]
    assert t["ud_low"] == -5.0 and t["ud_high"] == -2.0 and "gain" not in t
    assert set(t) == set(findings.DEFAULTS)


def test_config_defaults_match_the_findings_defaults():
    cfg = load_config(None, []).to_dict()
    assert {k: cfg[k] for k in findings.DEFAULTS} == findings.DEFAULTS


@pytest.mark.parametrize(
    "override, key",
    [
        ("saturation_threshold=0", "saturation_threshold"),
        ("saturation_threshold=100", "saturation_threshold"),
        ("std_ratio_threshold=1", "std_ratio_threshold"),
        ("grad_ratio_threshold=0.5", "grad_ratio_threshold"),
        ("grad_to_data_factor=nan", "grad_to_data_factor"),
        ("ud_low=-1", "ud_low"),
        ("ud_tail=0", "ud_tail"),
        ("ud_tail=1.5", "ud_tail"),
        ("ud_min_steps=0", "ud_min_steps"),
        ("dead_threshold=1", "dead_threshold"),
        ("loss_excess=0", "loss_excess"),
    ],
)
def test_out_of_range_thresholds_are_errors_naming_the_key(override, key):
    with pytest.raises(ActdiagError, match=f"key '{key}'"):
        load_config(None, [override])
