"""Read a run's statistics the way an experienced engineer would, in plain words.

Pure rules over a stats.json record and its series arrays: no torch, no model.
Each rule returns finding dicts {rule, severity, step, layer/kind or param/name,
value, threshold, message, advice}; `diagnose` runs them all and says the run is
healthy when nothing fires. The thresholds are config keys (see config.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from actdiag.config import FIELDS
from actdiag.text import shape_text

SEVERITIES = ("bad", "warn", "info")  # most serious first

# the config keys the rules read; runs that lack one get the Config default
THRESHOLD_KEYS = (
    "saturation_threshold",
    "std_ratio_threshold",
    "grad_ratio_threshold",
    "grad_to_data_factor",
    "ud_low",
    "ud_high",
    "ud_tail",
    "ud_min_steps",
    "dead_threshold",
    "loss_excess",
)
DEFAULTS = {key: FIELDS[key].default for key in THRESHOLD_KEYS}


def thresholds_from(config: dict) -> dict:
    """The thresholds of a run's config mapping, defaults filling what it lacks."""
    return {key: config.get(key, default) for key, default in DEFAULTS.items()}


def finding(
    rule: str,
    severity: str,
    message: str,
    advice: str,
    *,
    value=None,
    threshold=None,
    **where,
) -> dict:
    """One finding; `where` names the step, layer and kind, or param and name."""
    out = {
        "rule": rule,
        "severity": severity,
        **where,
        "value": value,
        "threshold": threshold,
        "message": message,
        "advice": advice,
    }
    return out


def _layer(record: dict) -> str:
    return f"layer {record['layer']} ({record['kind']})"


def _param_label(param: dict) -> str:
    return f"param {param['param']} {shape_text(param['shape'])} '{param['name']}'"


# ---------------------------------------------------------------------------
# rules on one snapshot


def saturation(snapshot: dict, t: dict) -> list[dict]:
    """Tanh layers with more than `saturation_threshold` percent of |t| > 0.97."""
    limit, out = t["saturation_threshold"], []
    for a in snapshot["activations"]:
        value = a.get("saturated")
        if value is None or value <= limit:
            continue
        severity = "bad" if value > 5 * limit else "warn"
        out.append(
            finding(
                "saturation",
                severity,
                f"{_layer(a)} at step {snapshot['step']}: {value:.2f}% of its outputs are "
                f"saturated (|t| > 0.97), above {limit:g}%.",
                "Saturated units pass almost no gradient. Lower the gain, normalize the "
                "inputs, or add batchnorm before the tanh.",
                value=value,
                threshold=limit,
                step=snapshot["step"],
                layer=a["layer"],
                kind=a["kind"],
            )
        )
    return out


def _depth_ratio(records: list[dict]) -> tuple[dict, dict, float] | None:
    """First and last record with a finite positive std, and last std / first std."""
    usable = [r for r in records if r.get("std") is not None and r["std"] > 0]
    if len(usable) < 2:
        return None
    first, last = usable[0], usable[-1]
    return first, last, last["std"] / first["std"]


def _depth_finding(
    rule: str,
    what: str,
    records: list[dict],
    snapshot: dict,
    factor: float,
    bad_power: int,
    explain: Callable[[bool], str],
    advice: Callable[[bool], str],
) -> list[dict]:
    """A finding when `what` std of the last record is beyond `factor` of the first's.

    Severity is bad past factor**bad_power either way; `explain(grows)` ends the
    message and `advice(grows)` says what to try.
    """
    found = _depth_ratio(records)
    if found is None:
        return []
    first, last, ratio = found
    if 1 / factor <= ratio <= factor:
        return []
    grows = ratio > factor
    severity = "bad" if max(ratio, 1 / ratio) > factor**bad_power else "warn"
    message = (
        f"{what} std {'grows' if grows else 'shrinks'} with depth at step "
        f"{snapshot['step']}: {first['std']:.3g} at {_layer(first)}, {last['std']:.3g} "
        f"at {_layer(last)} ({ratio:.3g}x; limit {factor:g}x either way)."
        + explain(grows)
    )
    return [
        finding(
            rule,
            severity,
            message,
            advice(grows),
            value=ratio,
            threshold=factor,
            step=snapshot["step"],
            layer=last["layer"],
            kind=last["kind"],
            direction="grows" if grows else "shrinks",
        )
    ]


def act_depth(snapshot: dict, t: dict) -> list[dict]:
    """Activation std of the last watched layer beyond a factor of the first's."""
    return _depth_finding(
        "act_depth",
        "Activation",
        snapshot["activations"],
        snapshot,
        t["std_ratio_threshold"],
        3,
        lambda grows: "",
        lambda grows: (
            "Each layer amplifies its input: put a squashing nonlinearity (tanh) "
            "between the Linear layers, lower the gain, or add batchnorm."
            if grows
            else "Each layer shrinks its input, so deep layers see almost nothing: "
            "raise the gain (5/3 for tanh) or add batchnorm."
        ),
    )


def grad_depth(snapshot: dict, t: dict) -> list[dict]:
    """Gradient std of the last watched layer beyond a factor of the first's."""
    # the backward pass runs from the last layer to the first
    return _depth_finding(
        "grad_depth",
        "Activation-gradient",
        snapshot["gradients"],
        snapshot,
        t["grad_ratio_threshold"],
        2,
        lambda grows: (
            " Flowing backward toward the input the gradients "
            f"{'vanish' if grows else 'explode'}, so layers learn at very different "
            "speeds."
        ),
        lambda grows: (
            "Bring the gain back to what the nonlinearity needs (5/3 for tanh, 1 for "
            "none), keep a tanh between Linear layers, or add batchnorm."
        ),
    )


def grad_to_data_outlier(snapshot: dict, params: list[dict], t: dict) -> list[dict]:
    """Weights whose grad:data is more than a factor above the weights' median."""
    weights = [w for w in snapshot["weights"] if w.get("grad_to_data") is not None]
    if len(weights) < 3:
        return []
    median = float(np.median([w["grad_to_data"] for w in weights]))
    limit, names = t["grad_to_data_factor"] * median, {p["param"]: p for p in params}
    output = max(w["param"] for w in snapshot["weights"])
    out = []
    for w in weights:
        if median <= 0 or w["grad_to_data"] <= limit:
            continue
        times = w["grad_to_data"] / median
        label = _param_label(names.get(w["param"], {"name": "?", **w}))
        out.append(
            finding(
                "grad_to_data",
                "warn",
                f"{label} at step {snapshot['step']}: grad:data {w['grad_to_data']:.3g} is "
                f"{times:.0f}x the median {median:.3g} of the weights (limit "
                f"{t['grad_to_data_factor']:g}x).",
                _outlier_advice(w["param"] == output, snapshot["step"]),
                value=w["grad_to_data"],
                threshold=limit,
                step=snapshot["step"],
                param=w["param"],
                name=names.get(w["param"], {}).get("name"),
            )
        )
    return out


def _outlier_advice(is_output: bool, step: int) -> str:
    if is_output and step == 1:
        return (
            "Expected at initialization: the output layer was scaled down, so its "
            "gradient is large next to it. It learns faster at first and settles "
            "within a few hundred steps; watch that it does."
        )
    if is_output:
        return (
            "The output layer still moves much faster than the rest; lower lr or "
            "train longer and check that it settles."
        )
    return (
        "This weight's gradient is large next to its values, so it moves much "
        "faster than the others: check its initial scale (fan-in scaling, gain) "
        "and the layers feeding it."
    )


def dead(snapshot: dict, t: dict) -> list[dict]:
    """Tanh layers with units saturated on every example of the batch."""
    out = []
    for a in snapshot["activations"]:
        count = a.get("dead_units")
        if not count:
            continue
        units = _units(a)
        share = f" of {units}" if units else ""
        severity = "bad" if units and count > 0.1 * units else "warn"
        out.append(
            finding(
                "dead_units",
                severity,
                f"{_layer(a)} at step {snapshot['step']}: {count}{share} units are "
                f"saturated (|t| > {t['dead_threshold']:g}) on every example of the batch; "
                "they pass no gradient and cannot learn.",
                "Lower the gain or the initial weight scale (fan-in scaling), or add "
                "batchnorm; the saturation picture shows them as white columns.",
                value=count,
                threshold=t["dead_threshold"],
                step=snapshot["step"],
                layer=a["layer"],
                kind=a["kind"],
            )
        )
    return out


def _units(record: dict) -> int | None:
    return record.get("units")


# ---------------------------------------------------------------------------
# rules on the whole run


def update_to_data(params: list[dict], ud: np.ndarray, t: dict) -> list[dict]:
    """Mean log10 update:data of each weight over the last part of training."""
    steps = len(ud)
    if steps < t["ud_min_steps"]:
        return [
            finding(
                "update_to_data",
                "info",
                f"Not enough steps to judge update:data: {steps} done, the rule needs "
                f"{t['ud_min_steps']} (key ud_min_steps).",
                "Train for more steps to see whether the learning rate suits each weight.",
                value=steps,
                threshold=t["ud_min_steps"],
            )
        ]
    tail = max(1, round(steps * t["ud_tail"]))
    output = max((p["param"] for p in params if len(p["shape"]) == 2), default=None)
    out = []
    for p in params:
        if len(p["shape"]) != 2:
            continue
        column = ud[-tail:, p["param"]]
        finite = column[np.isfinite(column)]
        if not len(finite):
            continue
        mean = float(finite.mean())
        slow, fast = mean < t["ud_low"], mean > t["ud_high"]
        if not (slow or fast):
            continue
        limit = t["ud_low"] if slow else t["ud_high"]
        severity = "bad" if abs(mean - limit) > 1 else "warn"
        advice = (
            "Raise lr: updates this small barely move the weight."
            if slow
            else "Lower lr: updates this large next to the weight make training "
            "noisy or unstable."
        )
        if fast and p["param"] == output:
            advice = (
                "The output layer was scaled down at initialization, so early "
                "on its updates are large next to its small weight; this "
                "fades as it grows. If it persists over a long run, lower lr."
            )
        out.append(
            finding(
                "update_to_data",
                severity,
                f"{_param_label(p)}: mean log10 update:data over the last {tail} steps is "
                f"{mean:+.2f}, {'below' if slow else 'above'} {limit:+g}; it learns too "
                f"{'slowly' if slow else 'fast'} (about -3, i.e. 1e-3, is the guide).",
                advice,
                value=mean,
                threshold=limit,
                param=p["param"],
                name=p["name"],
            )
        )
    return out


def first_loss(loss: np.ndarray, vocab_size: int | None, t: dict) -> list[dict]:
    """Loss of step 1 against -log(1/vocab), the loss of a uniform guess."""
    if not len(loss) or not vocab_size or not math.isfinite(float(loss[0])):
        return []
    uniform, value = math.log(vocab_size), float(loss[0])
    limit = uniform + t["loss_excess"]
    if value <= limit:
        return []
    severity = "bad" if value - uniform > 4 * t["loss_excess"] else "warn"
    return [
        finding(
            "first_loss",
            severity,
            f"The first step's loss {value:.4f} is {value - uniform:.2f} above "
            f"{uniform:.4f}, the loss of a uniform guess over {vocab_size} tokens: the "
            "output layer starts confidently wrong.",
            "Scale the output layer down at initialization (last_layer_scale, e.g. 0.1) "
            "and keep the hidden activations from growing.",
            value=value,
            threshold=limit,
            step=1,
        )
    ]


def divergence(stats: dict) -> list[dict]:
    """A loss that stopped being finite."""
    step = stats.get("diverged")
    if step is None:
        return []
    return [
        finding(
            "divergence",
            "bad",
            f"The loss was not finite at step {step}; training stopped there.",
            "Lower lr, or check the gain and the initial scale of the weights.",
            value=step,
            threshold=None,
            step=step,
        )
    ]


def undefined(stats: dict) -> list[dict]:
    """Statistics that could not be computed, and why."""
    out = []
    for snap in stats["snapshots"]:
        for group, what in (("activations", "activation"), ("gradients", "gradient")):
            for r in snap.get(group, []):
                if r.get("std") is None:
                    out.append(
                        finding(
                            "undefined",
                            "info",
                            f"The {what} std of {_layer(r)} at step {snap['step']} is "
                            "undefined (NaN, infinity or a single entry).",
                            "Look for a diverging loss or a batch of one.",
                            step=snap["step"],
                            layer=r["layer"],
                            kind=r["kind"],
                        )
                    )
        for w in snap.get("weights", []):
            if w.get("grad_to_data") is None:
                out.append(
                    finding(
                        "undefined",
                        "info",
                        f"grad:data of param {w['param']} at step {snap['step']} is "
                        f"undefined: {w.get('reason', 'no reason recorded')}.",
                        "A weight with no spread has no meaningful ratio.",
                        step=snap["step"],
                        param=w["param"],
                    )
                )
    undefined_ud = [p for p in stats.get("params", []) if p.get("undefined_steps")]
    if undefined_ud:
        worst = max(p["undefined_steps"] for p in undefined_ud)
        names = ", ".join(
            f"{p['param']} ({p['undefined_steps']})" for p in undefined_ud
        )
        out.append(
            finding(
                "undefined",
                "info",
                f"update:data is undefined at some steps for {len(undefined_ud)} params "
                f"(param (steps): {names}): {undefined_ud[0].get('reason', 'no reason')}.",
                "Harmless for a few steps; at many steps the weight's gradient is zero, "
                "often because its units are dead.",
                value=worst,
                params=[p["param"] for p in undefined_ud],
            )
        )
    return out


# ---------------------------------------------------------------------------
# all of them


def diagnose(
    stats: dict, series: dict[str, np.ndarray], thresholds: dict
) -> list[dict]:
    """Every rule over a run, most serious first; one healthy finding if none fires."""
    t = {**DEFAULTS, **thresholds}
    snapshot_rules: list[Callable] = [saturation, dead, act_depth, grad_depth]
    out: list[dict] = divergence(stats)
    out += first_loss(
        series.get("loss", np.empty(0)), stats.get("data", {}).get("vocab_size"), t
    )
    for snap in stats["snapshots"]:
        for rule in snapshot_rules:
            out += rule(snap, t)
        out += grad_to_data_outlier(snap, stats.get("params", []), t)
    ud = series.get("update_to_data", np.empty((0, 0)))
    out += update_to_data(stats.get("params", []), ud, t)
    out += undefined(stats)
    if not any(f["severity"] != "info" for f in out):
        out.insert(
            0,
            finding(
                "healthy",
                "info",
                f"Healthy: no rule fired over {stats.get('steps', 0)} steps.",
                "Nothing to change; compare against a longer run or other gains.",
                value=None,
                threshold=None,
            ),
        )
    # most serious first; within a severity, a rule's findings stay together
    rules = list(dict.fromkeys(f["rule"] for f in out))
    return sorted(
        out, key=lambda f: (SEVERITIES.index(f["severity"]), rules.index(f["rule"]))
    )


def findings_record(stats: dict, series: dict[str, np.ndarray]) -> dict:
    """The stats.json keys `thresholds` and `findings` of a run."""
    t = thresholds_from(stats.get("config", {}))
    return {"thresholds": t, "findings": diagnose(stats, series, t)}
