"""Comparison of finished runs, read from their run directories alone.

Pure functions turn stats records (and the update:data series) into one
comparison record: the config keys that differ, then per family a row per
aligned layer or weight with each run's value, its change against the first
run and whether it crossed a health threshold. `compare_runs` at the end
writes the record and the overlay pictures; rendering lives in tables.py
and plots.py.
"""

from __future__ import annotations

import json
from itertools import zip_longest
from pathlib import Path

import numpy as np

from actdiag import artifacts
from actdiag.errors import ActdiagError
from actdiag.text import show_value

# health thresholds: a value past one is unhealthy, a change across one is highlighted
SATURATED_MAX = 5.0  # percent of |t| > 0.97 in a tanh layer
UPDATE_LOW, UPDATE_HIGH = -4.0, -2.0  # healthy band of log10 update:data
GRAD_TO_DATA_OUTLIER = 10.0  # times the median grad_to_data of the run's weights

# a stat did not move when its change stays within these
MOVED_RATIO = 0.01  # spreads: |ratio - 1|
MOVED_POINTS = 0.1  # saturated: percentage points
MOVED_DECADES = 0.01  # update_to_data: difference of log10 values
MOVED_MEAN = 1e-6  # means: absolute difference

UPDATE_WINDOW = 0.1  # update_to_data: mean over this fraction of steps up to the step
SWEEP = artifacts.SWEEP

# family -> (stat, how its change is measured, shown in the table)
FAMILIES = {
    "act": [
        ("mean", "difference", False),
        ("std", "ratio", True),
        ("saturated", "difference", True),
    ],
    "grad": [("mean", "difference", False), ("std", "ratio", True)],
    "weight": [
        ("mean", "difference", False),
        ("std", "ratio", True),
        ("grad_to_data", "ratio", True),
    ],
    "update_to_data": [("update_to_data", "difference", True)],
}
# the stats each family's table shows
TABLE_STATS = {f: [s for s, _, shown in spec if shown] for f, spec in FAMILIES.items()}
TITLES = {
    "act": "activations",
    "grad": "activation gradients",
    "weight": "weight gradients",
    "update_to_data": "update:data (log10)",
}
ALIGNMENT = (
    "rows align layers by their order among each run's watched layers, and weights "
    "by their order among its 2-D parameters; '-' marks a row a run does not have"
)


# ---------------------------------------------------------------------------
# finding and loading runs


def expand(paths: list[Path]) -> list[Path]:
    """Run directories of `paths`, with each sweep directory replaced by its points."""
    runs = []
    for path in paths:
        if not path.exists():
            raise ActdiagError(f"{path}: no such file or directory")
        if (path / artifacts.STATS).is_file() or not path.is_dir():
            runs.append(path)
            continue
        points = sweep_points(path)
        if not points:
            raise ActdiagError(
                f"{path}: not a run directory (no {artifacts.STATS} inside) "
                "and not a sweep directory (no run directories inside)"
            )
        runs += points
    return runs


def sweep_points(path: Path) -> list[Path]:
    """A sweep's run directories: those sweep.json lists, else subfolders with stats."""
    listed = _listed_points(path)
    if listed:
        return listed
    subdirs = sorted(p for p in path.iterdir() if p.is_dir())
    return [p for p in subdirs if (p / artifacts.STATS).is_file()]


def _listed_points(path: Path) -> list[Path]:
    # NOTE: tolerant on purpose: an unreadable sweep.json falls back to the
    # subfolders, and points whose folder is not there yet are left out
    try:
        record = json.loads((path / SWEEP).read_text(encoding="utf-8"))
        points = record["points"]
        dirs = [
            path / p["run_dir"] for p in points if isinstance(p.get("run_dir"), str)
        ]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []
    return [d for d in dirs if d.is_dir()]


def load_run(path: Path) -> dict:
    """A run's stats and series, checked for what a comparison reads."""
    stats = artifacts.read_stats(path)
    where = path / artifacts.STATS
    _check_stats(stats, where)
    series = artifacts.read_series(path)
    ud = series.get("update_to_data")
    if ud is None or ud.ndim != 2 or ud.shape[1] != len(stats["params"]):
        shape = None if ud is None else tuple(ud.shape)
        raise ActdiagError(
            f"{path / artifacts.SERIES}: corrupt series file (update_to_data has shape "
            f"{shape}; expected (steps, {len(stats['params'])}))"
        )
    return {"path": path, "stats": stats, "series": series}


def _check_stats(stats: dict, where: Path) -> None:
    def bad(what: str) -> ActdiagError:
        return ActdiagError(f"{where}: corrupt stats file ({what})")

    if not isinstance(stats["config"], dict):
        raise bad("config is not a mapping")
    if not isinstance(stats.get("params"), list):
        raise bad("params is missing or not a list")
    if not isinstance(stats["snapshots"], list):
        raise bad("snapshots is not a list")
    for i, snap in enumerate(stats["snapshots"]):
        if not isinstance(snap, dict) or not isinstance(snap.get("step"), int):
            raise bad(f"snapshot {i} has no step")
        for key in ("activations", "gradients", "weights"):
            if not isinstance(snap.get(key), list):
                raise bad(f"snapshot at step {snap['step']} has no {key} list")
    if not stats["snapshots"]:
        raise ActdiagError(f"{where}: the run recorded no snapshot to compare")


def load_runs(paths: list[Path]) -> list[dict]:
    """Expand sweeps and load every run; at least two are needed."""
    runs = [load_run(p) for p in expand(paths)]
    if len(runs) < 2:
        given = ", ".join(str(p) for p in paths) or "nothing"
        raise ActdiagError(f"{given}: compare needs at least two runs; got {len(runs)}")
    return runs


# ---------------------------------------------------------------------------
# config difference and run labels


def config_diff(configs: list[dict]) -> dict[str, list]:
    """The config keys whose value is not the same in every run, one value per run."""
    keys = list(dict.fromkeys(k for c in configs for k in c))
    diff = {}
    for key in keys:
        values = [c.get(key) for c in configs]
        if any(v != values[0] for v in values[1:]):
            diff[key] = values
    return diff


def run_labels(paths: list[Path], diff: dict[str, list], width: int = 24) -> list[str]:
    """Short distinct names: the differing keys when short, else the folder names."""
    n = len(paths)
    keys = [k for k in diff if k != "data"][:3]
    if keys:
        labels = [
            " ".join(f"{k}={show_value(diff[k][i])}" for k in keys) for i in range(n)
        ]
        if len(set(labels)) == n and max(map(len, labels)) <= width:
            return labels
    labels = [p.name or str(p) for p in paths]
    if len(set(labels)) < n:
        labels = [f"{p.parent.name}/{p.name}" for p in paths]
    if len(set(labels)) < n:
        labels = [f"{i + 1}:{label}" for i, label in enumerate(labels)]
    return labels


# ---------------------------------------------------------------------------
# snapshots and alignment


def pick_snapshots(runs: list[dict], step: int | None) -> list[dict]:
    """Each run's last snapshot, or the one at `step`, which every run must hold."""
    if step is None:
        return [run["stats"]["snapshots"][-1] for run in runs]
    common = set.intersection(*(snapshot_steps(r) for r in runs))
    picked = []
    for run in runs:
        found = [s for s in run["stats"]["snapshots"] if s["step"] == step]
        if not found:
            steps = ", ".join(map(str, sorted(snapshot_steps(run))))
            both = ", ".join(map(str, sorted(common))) or "none"
            raise ActdiagError(
                f"{run['path']}: no snapshot at step {step} (it has {steps}); "
                f"steps every run holds: {both}"
            )
        picked.append(found[0])
    return picked


def snapshot_steps(run: dict) -> set[int]:
    """The steps at which a run recorded full statistics."""
    return {s["step"] for s in run["stats"]["snapshots"]}


def align(records: list[list[dict]]) -> list[list[dict | None]]:
    """Rows of the k-th record of every run; None where a run has fewer."""
    return [list(row) for row in zip_longest(*records)]


def update_records(run: dict, step: int) -> list[dict]:
    """Mean log10 update:data per 2-D weight over the last 10 % of steps to `step`."""
    ud = run["series"]["update_to_data"][:step]  # (steps, n_params)
    window = max(1, int(len(ud) * UPDATE_WINDOW))
    tail = ud[-window:]
    with np.errstate(all="ignore"):
        finite = np.isfinite(tail)
        counts = finite.sum(axis=0)
        sums = np.where(finite, tail, 0).sum(axis=0, dtype=np.float64)
    records = []
    for p in run["stats"]["params"]:
        if len(p["shape"]) != 2:
            continue
        i = p["param"]
        mean = float(sums[i] / counts[i]) if len(tail) and counts[i] else None
        records.append(
            {"param": i, "shape": p["shape"], "update_to_data": mean, "steps": window}
        )
    return records


def family_records(runs: list[dict], snaps: list[dict], family: str) -> list[list]:
    """Per run, the records of `family` in watched or parameter order."""
    if family == "update_to_data":
        return [update_records(r, s["step"]) for r, s in zip(runs, snaps, strict=True)]
    key = {"act": "activations", "grad": "gradients", "weight": "weights"}[family]
    return [s[key] for s in snaps]


def aligned(runs: list[dict], snaps: list[dict], family: str) -> list[list]:
    """The aligned rows of `family`: per row, each run's record or None."""
    return align(family_records(runs, snaps, family))


# ---------------------------------------------------------------------------
# values, changes and health


def change(value: float | None, first: float | None, how: str) -> float | None:
    """`value` against the first run's: a difference, or a ratio for spreads."""
    if value is None or first is None:
        return None
    if how == "difference":
        return value - first
    return value / first if first != 0 else None


def medians(snaps: list[dict]) -> list[float | None]:
    """Per run, the median grad_to_data over its 2-D weights."""
    out = []
    for snap in snaps:
        values = [
            w["grad_to_data"]
            for w in snap["weights"]
            if w.get("grad_to_data") is not None
        ]
        out.append(float(np.median(values)) if values else None)
    return out


def unhealthy(stat: str, value: float | None, median: float | None = None) -> bool:
    """Whether `value` lies past the health threshold of `stat`."""
    if value is None:
        return False
    if stat == "saturated":
        return value > SATURATED_MAX
    if stat == "update_to_data":
        return not UPDATE_LOW <= value <= UPDATE_HIGH
    if stat == "grad_to_data" and median is not None:
        return value > GRAD_TO_DATA_OUTLIER * median
    return False


def moved(stat: str, how: str, changes: list[float | None]) -> bool:
    """Whether any change against the first run is larger than noise."""
    for c in changes:
        if c is None:
            continue
        if how == "ratio" and abs(c - 1) > MOVED_RATIO:
            return True
        limit = {"saturated": MOVED_POINTS, "update_to_data": MOVED_DECADES}
        if how == "difference" and abs(c) > limit.get(stat, MOVED_MEAN):
            return True
    return False


def stat_cell(stat: str, how: str, row: list, meds: list) -> dict:
    """One stat of an aligned row: values, changes, unhealthy and crossed per run."""
    values = [None if r is None else r.get(stat) for r in row]
    changes = [None] + [change(v, values[0], how) for v in values[1:]]
    bad = [unhealthy(stat, v, m) for v, m in zip(values, meds, strict=True)]
    crossed = [False] + [
        v is not None and values[0] is not None and b != bad[0]
        for v, b in zip(values[1:], bad[1:], strict=True)
    ]
    return {
        "values": values,
        "change": how,
        "changes": changes,
        "unhealthy": bad,
        "crossed": crossed,
        "moved": moved(stat, how, changes) or any(crossed),
    }


def row_members(family: str, row: list) -> list[dict | None]:
    """Per run, what a row stands for: its layer and kind, or its param and shape."""
    keys = ("layer", "kind") if family in ("act", "grad") else ("param", "shape")
    return [None if r is None else {k: r[k] for k in keys} for r in row]


def member_name(member: dict | None) -> str | None:
    """A row member as text, e.g. 'layer 3 (tanh)' or 'param 1 (30x100)'."""
    if member is None:
        return None
    if "layer" in member:
        return f"layer {member['layer']} ({member['kind']})"
    return f"param {member['param']} ({'x'.join(map(str, member['shape']))})"


def family_rows(family: str, rows: list[list], meds: list) -> list[dict]:
    """The comparison rows of one family."""
    out = []
    for k, row in enumerate(rows, start=1):
        stats = {
            stat: stat_cell(stat, how, row, meds) for stat, how, _ in FAMILIES[family]
        }
        missing = any(r is None for r in row)
        shown = [s for s, _, table in FAMILIES[family] if table]
        members = row_members(family, row)
        out.append(
            {
                "row": k,
                "members": members,
                "names": [member_name(m) for m in members],
                "stats": stats,
                "moved": missing or any(stats[s]["moved"] for s in shown),
            }
        )
    return out


def compare(runs: list[dict], step: int | None = None) -> dict:
    """The comparison record of loaded runs at their last snapshot or at `step`."""
    paths = [r["path"] for r in runs]
    diff = config_diff([r["stats"]["config"] for r in runs])
    labels = run_labels(paths, diff)
    snaps = pick_snapshots(runs, step)
    meds = medians(snaps)

    # one summary per run
    summary = []
    for run, label, snap, med in zip(runs, labels, snaps, meds, strict=True):
        s = run["stats"]
        summary.append(
            {
                "label": label,
                "path": str(run["path"]),
                "step": snap["step"],
                "steps": s["steps"],
                "loss": s.get("loss"),
                "val_loss": s.get("val_loss"),
                "step_loss": snap.get("loss"),
                "grad_to_data_median": med,
            }
        )

    # one table of aligned rows per family
    families = {}
    for family in FAMILIES:
        rows = aligned(runs, snaps, family)
        families[family] = family_rows(family, rows, meds)
    return {
        "runs": summary,
        "config_diff": diff,
        "alignment": ALIGNMENT,
        "thresholds": thresholds(),
        "families": families,
    }


def thresholds() -> dict:
    """The health thresholds, as stated in the table captions."""
    return {
        "saturated_max": SATURATED_MAX,
        "update_to_data_band": [UPDATE_LOW, UPDATE_HIGH],
        "grad_to_data_outlier": GRAD_TO_DATA_OUTLIER,
        "update_to_data_window": UPDATE_WINDOW,
    }


def only_changed(record: dict) -> dict:
    """The record without the rows that did not move."""
    families = {
        f: [r for r in rows if r["moved"]] for f, rows in record["families"].items()
    }
    return {**record, "families": families}


def shapes_differ(record: dict) -> bool:
    """Whether rows stand for different layers or weights in different runs."""
    for rows in record["families"].values():
        for row in rows:
            if len(set(row["names"])) > 1:
                return True
    return False


# ---------------------------------------------------------------------------
# writing a comparison folder


def compare_runs(
    paths: list[Path], step: int | None = None, out: Path | None = None
) -> tuple[dict, Path, list[Path]]:
    """Load, compare, and write compare.json and the overlay pictures to a new folder.

    Returns the record, the folder and the pictures written. Nothing is
    created when a run cannot be read.
    """
    runs = load_runs(paths)
    record = compare(runs, step)
    folder = artifacts.make_run_dir("compare", out, root=runs[0]["path"].parent)
    artifacts.write_json(folder / artifacts.COMPARE, artifacts.clean(record))

    # pictures, drawn from the same aligned records (two processes where two cores)
    from actdiag.plots import plot_compare

    snaps = pick_snapshots(runs, step)
    hists = {f: aligned(runs, snaps, f) for f in ("act", "grad", "weight")}
    series = [update_series(r) for r in runs]
    pictures = plot_compare(folder, record, hists, series)

    # the page that gathers the tables and pictures
    from actdiag.report import write_compare_report

    write_compare_report(folder)
    return record, folder, pictures


def update_series(run: dict) -> np.ndarray:
    """A run's log10 update:data of its 2-D weights, (steps, n_weights)."""
    columns = [p["param"] for p in run["stats"]["params"] if len(p["shape"]) == 2]
    return run["series"]["update_to_data"][:, columns]
