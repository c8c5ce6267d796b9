"""PNG figures of a run, drawn from its records alone; the only matplotlib user.

One function per figure; all share `_new_figure` and `_save`. Figures are
drawn straight onto an Agg canvas, without pyplot: nothing is shown, and no
figure outlives the function that saves it.
"""

from __future__ import annotations

import gc
import io
import math
import multiprocessing
import os
import sys
import threading
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import EngFormatter, MaxNLocator

from actdiag.artifacts import GUIDE, saturation_png, write_bytes_atomic
from actdiag.text import fmt

# zlib level of the PNGs: 3 writes them in about two thirds of the time of the
# default 6, for files 1-25 % larger; the pixels are the same
PNG_LEVEL = 3


def _new_figure(**kwargs) -> Figure:
    """A figure on its own Agg canvas (kwargs as for Figure: figsize, dpi, layout)."""
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", pil_kwargs={"compress_level": PNG_LEVEL})
    return buf.getvalue()


def _figure(title: str, xlabel: str, ylabel: str, tag: str = ""):
    fig = _new_figure(figsize=(12, 4.8), dpi=100)
    ax = fig.subplots()
    ax.set_title(f"{tag}: {title}" if tag else title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if xlabel == "step":
        # integer ticks, and no tick past the last step
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.margins(x=0.01)
    return fig, ax


def _save(fig, path: Path, tight: bool = True) -> Path:
    if tight:
        fig.tight_layout()
    write_bytes_atomic(path, _png(fig))
    return path


def _legend_right(ax) -> None:
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def _param_label(p: dict) -> str:
    """`param 3 · layer 2.weight (100x100)`: its index, owner and shape."""
    shape = "x".join(str(n) for n in p["shape"])
    return f"param {p['param']}{_owner(p.get('name'))} ({shape})"


def _owner(name: str | None) -> str:
    """` · weight of layer 2` from the parameter name `layer 2.weight`."""
    if not name:
        return ""
    if name.startswith("layer ") and "." in name:
        layer, attr = name.removeprefix("layer ").split(".", 1)
        return f" · {attr} of layer {layer}"
    return f" · {name}"


def binned(values: np.ndarray, bins: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Mean of `values` (steps, ...) over at most `bins` equal runs of steps.

    Returns (step at the centre of each run, (bins, ...) means), ignoring NaN.
    """
    steps = len(values)
    if steps <= bins:
        return np.arange(1, steps + 1), values
    edges = np.linspace(0, steps, bins + 1).astype(int)
    with np.errstate(invalid="ignore"):
        sums = np.add.reduceat(np.nan_to_num(values), edges[:-1], axis=0)
        counts = np.add.reduceat(np.isfinite(values), edges[:-1], axis=0)
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    centres = (edges[:-1] + edges[1:]) / 2 + 0.5
    return centres, means


def _hist_lines(ax, records: list[dict], label) -> None:
    for r in records:
        hist = r.get("hist")
        if hist is None:
            continue
        edges = np.asarray(hist["edges"])
        centers = (edges[:-1] + edges[1:]) / 2
        ax.plot(centers, hist["density"], label=label(r))
    if ax.lines:
        _legend_right(ax)


def plot_activations(snapshot: dict, path: Path, tag: str = "") -> Path:
    """Density of each watched layer's output; mass piled at +-1 means saturation."""
    fig, ax = _figure(
        f"activation distribution · step {snapshot['step']}",
        "activation value",
        "density",
        tag=tag,
    )

    def label(a):
        sat = "" if a.get("saturated") is None else f", saturated {a['saturated']:.2f}%"
        return f"layer {a['layer']} ({a['kind']}): std {fmt(a['std'], '.2f')}{sat}"

    _hist_lines(ax, snapshot["activations"], label)
    return _save(fig, path)


def plot_gradients(snapshot: dict, path: Path, tag: str = "") -> Path:
    """Density of the gradient of each watched layer's output."""
    fig, ax = _figure(
        f"activation gradient distribution · step {snapshot['step']}",
        "gradient value",
        "density",
        tag=tag,
    )
    _hist_lines(
        ax,
        snapshot["gradients"],
        lambda g: f"layer {g['layer']} ({g['kind']}): std {fmt(g['std'], '.2e')}",
    )
    return _save(fig, path)


def plot_weight_grads(
    snapshot: dict, params: list[dict], path: Path, tag: str = ""
) -> Path:
    """Density of each 2-D weight's gradient, labelled with its grad:data ratio."""
    fig, ax = _figure(
        f"weight gradient distribution · step {snapshot['step']}",
        "gradient value",
        "density",
        tag=tag,
    )

    names = {p["param"]: p.get("name") for p in params}

    def label(w):
        named = dict(w, name=names.get(w["param"]))
        return f"{_param_label(named)}: grad:data {fmt(w['grad_to_data'], '.2e')}"

    _hist_lines(ax, snapshot["weights"], label)
    return _save(fig, path)


def plot_update_to_data(
    params: list[dict], ud: np.ndarray, path: Path, tag: str = ""
) -> Path:
    """log10 update:data of every 2-D weight over the steps, with the -3 guide line."""
    steps, values = binned(ud)
    title = "update:data ratio over training"
    if len(steps) < len(ud):
        title += f" (mean of every {len(ud) // len(steps)} steps)"
    fig, ax = _figure(title, "step", "log10(std(lr·grad) / std(weight))", tag=tag)
    marker = "o" if len(ud) < 20 else None
    for p in params:
        if len(p["shape"]) == 2:
            ax.plot(
                steps, values[:, p["param"]], marker=marker, lw=1, label=_param_label(p)
            )
    ax.axhline(GUIDE, color="black", ls="--", lw=1.2, label="1e-3 guide")
    _legend_right(ax)
    return _save(fig, path)


def plot_loss(loss: np.ndarray, path: Path, tag: str = "") -> Path:
    """Training loss per step (faint) and its mean over runs of ~1% of the steps."""
    fig, ax = _figure("training loss", "step", "cross-entropy loss", tag=tag)
    steps, values = binned(loss)
    marker = "o" if len(loss) < 20 else None
    ax.plot(
        steps,
        values,
        color="tab:blue",
        alpha=0.35,
        lw=0.6,
        marker=marker,
        label="per step"
        if len(steps) == len(loss)
        else f"mean of every {len(loss) // len(steps)} steps",
    )
    centres, means = binned(loss, bins=min(100, len(loss)))
    if len(loss) >= 200:
        ax.plot(
            centres,
            means,
            color="tab:blue",
            lw=1.8,
            label=f"mean of every {len(loss) // len(centres)} steps",
        )
    # a loss that spans decades (a diverging run) reads better on a log axis
    finite = loss[np.isfinite(loss)]
    if len(finite) and finite.min() > 0 and finite.max() / finite.min() > 100:
        ax.set_yscale("log")
    _legend_right(ax)
    return _save(fig, path)


def plot_run(
    run_dir: Path,
    stats: dict,
    series: dict[str, np.ndarray],
    maps: dict[tuple[int, int], np.ndarray] | None = None,
) -> list[Path]:
    """Every figure of a run directory; returns the paths written.

    `maps` is {(step, layer): (batch, units) bool}, as `read_saturation_maps` gives.
    """
    paths = []
    maps = maps or {}
    tag = stats.get("name", "")
    threshold = stats["config"].get("dead_threshold", 0.99)
    for snap in stats["snapshots"]:
        k = snap["step"]
        paths.append(plot_activations(snap, run_dir / f"act_hist_step{k}.png", tag))
        paths.append(plot_gradients(snap, run_dir / f"grad_hist_step{k}.png", tag))
        paths.append(
            plot_weight_grads(
                snap, stats["params"], run_dir / f"weight_grad_hist_step{k}.png", tag
            )
        )
        for a in snap["activations"]:
            if (k, a["layer"]) in maps:
                path = run_dir / saturation_png(k, a["layer"])
                paths.append(
                    plot_saturation_map(maps[(k, a["layer"])], k, a, threshold, path)
                )
    if len(series["loss"]):
        paths.append(
            plot_update_to_data(
                stats["params"],
                series["update_to_data"],
                run_dir / "update_to_data.png",
                tag,
            )
        )
        paths.append(plot_loss(series["loss"], run_dir / "loss.png", tag))
    return paths


# ---------------------------------------------------------------------------
# comparison of runs: overlays on shared axes, one colour per run

MAX_POINTS = 400  # update:data curves are drawn as means of at most this many bins


def _colour(i: int) -> str:
    return f"C{i % 10}"


def _grid(n: int, sharex: bool, sharey: bool, title: str):
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    # NOTE: fixed margins instead of tight_layout, which costs as much as the drawing
    height = 3.3 * nrows + 0.8
    fig = _new_figure(figsize=(5.2 * ncols, height), dpi=100)
    grid = fig.add_gridspec(
        nrows,
        ncols,
        left=0.75 / (5.2 * ncols),
        right=0.99,
        top=1 - 0.8 / height,
        bottom=0.7 / height,
        wspace=0.22,
        hspace=0.42,
    )

    # only the n panels drawn: an axes costs as much to make as to draw
    axes = []
    for i in range(n):
        first = axes[0] if axes else None
        ax = fig.add_subplot(
            grid[i // ncols, i % ncols],
            sharex=first if sharex else None,
            sharey=first if sharey else None,
        )
        axes.append(ax)
    if sharex:
        for i, ax in enumerate(axes):
            if i + ncols < n:
                ax.xaxis.set_tick_params(labelbottom=False)
    if sharey:
        for i, ax in enumerate(axes):
            if i % ncols:
                ax.yaxis.set_tick_params(labelleft=False)
    fig.suptitle(title)
    return fig, axes


def _axis_labels(axes: list, xlabel: str, ylabel: str, every: bool = False) -> None:
    # x labels under each bottom panel of a column, y labels on the left column
    ncols = axes[0].get_gridspec().ncols
    for i, ax in enumerate(axes):
        if every or i + ncols >= len(axes):
            ax.set_xlabel(xlabel)
            ax.xaxis.set_tick_params(labelbottom=True)
        if every or i % ncols == 0:
            ax.set_ylabel(ylabel)


def _hist_label(family: str, r: dict) -> str:
    if family == "act":
        sat = "" if r.get("saturated") is None else f", sat {r['saturated']:.1f}%"
        return f"std {fmt(r['std'], '.2f')}{sat}"
    if family == "grad":
        return f"std {fmt(r['std'], '.2e')}"
    return f"grad:data {fmt(r.get('grad_to_data'), '.2e')}"


def bin_means(y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, ...]:
    """Steps and NaN-aware means of `y` (steps, n) over at most `max_points` bins.

    Returns (bins,) centre steps (1-based) and (bins, n) means.
    """
    steps = len(y)
    size = max(1, math.ceil(steps / max_points))
    if size == 1:
        return np.arange(1, steps + 1, dtype=float), y

    # sums in float64 over runs of `size` rows, read in place (no padded copy)
    starts = np.arange(0, steps, size)
    finite = np.isfinite(y)
    sums = np.add.reduceat(np.where(finite, y, 0), starts, axis=0, dtype=np.float64)
    counts = np.add.reduceat(finite, starts, axis=0, dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    ends = np.minimum(starts + size, steps)
    return (starts + 1 + ends) / 2, means


HIST_TITLES = {
    "act": ("activation distribution", "activation value"),
    "grad": ("activation gradient distribution", "gradient value"),
    "weight": ("weight gradient distribution", "gradient value"),
}


def plot_compare_hists(
    record: dict, hists: dict[str, list], paths: dict[str, Path]
) -> list[Path]:
    """Per family in `hists`, each aligned row's histogram from every run, overlaid.

    One panel per row. A family with as many rows and the same axis sharing as
    the one before it (grad after act) is drawn on that figure again: the panels
    are made once, and only their curves, legends and titles change.
    """
    fig, axes, shape = None, [], None
    for family, rows in hists.items():
        share = family != "weight"
        if (len(rows), share) == shape:
            _clear_panels(axes)
        else:
            fig, axes = _grid(len(rows), share, share, "")
            shape = (len(rows), share)
        _draw_hists(fig, axes, family, record, rows)
        _save(fig, paths[family], tight=False)
    return [paths[f] for f in hists]


def _clear_panels(axes: list) -> None:
    """Take the curves and legends off `axes`, keeping the panels and their ticks."""
    for ax in axes:
        for line in list(ax.lines):
            line.remove()
        if ax.get_legend() is not None:
            ax.get_legend().remove()
        ax.relim()
        ax.set_autoscale_on(True)


def _draw_hists(fig, axes: list, family: str, record: dict, rows: list[list]) -> None:
    """One family's titles, curves, legends and axis labels, on panels already made."""
    labels = [r["label"] for r in record["runs"]]
    meta = record["families"][family]
    title, xlabel = HIST_TITLES[family]
    steps = " / ".join(map(str, sorted({r["step"] for r in record["runs"]})))
    fig.suptitle(f"{title} · step {steps}, by run")
    for ax, row, info in zip(axes, rows, meta, strict=True):
        names = info["names"]
        same = len(set(names)) == 1
        differ = "(layers differ)" if family != "weight" else "(weights differ)"
        ax.set_title(
            f"#{info['row']} " + (names[0] if same else differ), fontsize=10, y=1.0
        )
        for i, (label, r) in enumerate(zip(labels, row, strict=True)):
            if r is None or r.get("hist") is None:
                ax.plot([], [], color=_colour(i), label=f"{label}: - (no such row)")
                continue
            edges = np.asarray(r["hist"]["edges"])
            centres = (edges[:-1] + edges[1:]) / 2
            who = label if same else f"{label} · {names[i]}"
            ax.plot(
                centres,
                r["hist"]["density"],
                color=_colour(i),
                lw=1.2,
                label=f"{who}: {_hist_label(family, r)}",
            )
        ax.legend(fontsize=7, loc="upper right")
        ax.grid(alpha=0.3)

    # headroom above the peaks for the legends
    share = family != "weight"
    for ax in axes[:1] if share else axes:
        ax.set_ylim(0, ax.get_ylim()[1] * 1.3)
    _axis_labels(axes, xlabel, "density", every=not share)


def plot_compare_depth(record: dict, path: Path) -> Path:
    """Activation std and percent saturated against depth, one line per run."""
    fig = _new_figure(figsize=(11, 4.2), dpi=100)
    left, right = fig.subplots(1, 2, sharex=True)
    # NOTE: fixed margins (room for two-line ticks) instead of tight_layout
    fig.subplots_adjust(left=0.06, right=0.975, top=0.92, bottom=0.21, wspace=0.17)
    rows = record["families"]["act"]
    ks = [row["row"] for row in rows]
    for i, run in enumerate(record["runs"]):
        std = [
            np.nan if v is None else v
            for v in (row["stats"]["std"]["values"][i] for row in rows)
        ]
        sat = [
            np.nan if v is None else v
            for v in (row["stats"]["saturated"]["values"][i] for row in rows)
        ]
        left.plot(ks, std, marker="o", color=_colour(i), label=run["label"])
        right.plot(ks, sat, marker="o", color=_colour(i), label=run["label"])
    limit = record["thresholds"]["saturated_max"]
    right.axhline(limit, color="black", ls="--", lw=1, label=f"{limit:g} % threshold")
    steps = " / ".join(map(str, sorted({r["step"] for r in record["runs"]})))
    left.set_title(f"activation std by depth · step {steps}")
    right.set_title(f"saturated (|t| > 0.97) by depth · step {steps}")
    left.set_ylabel("std")
    right.set_ylabel("saturated %")
    for ax in (left, right):
        ax.set_xlabel("watched layer, in order (#)")
        ax.set_xticks(ks)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower left" if ax is left else "best")
        ax.set_xticklabels([_depth_tick(row) for row in rows])
    left.set_ylim(bottom=0)
    right.set_ylim(bottom=0)
    return _save(fig, path, tight=False)


def _depth_tick(row: dict) -> str:
    members = row["members"]
    ids = [str(m["layer"]) if m else "-" for m in members]
    layers = ids[0] if len(set(ids)) == 1 else " | ".join(ids)
    return f"#{row['row']}\nlayer {layers}"


def plot_compare_updates(record: dict, series: list[np.ndarray], path: Path) -> Path:
    """log10 update:data of each aligned weight over the steps, one colour per run.

    `series` holds per run a (steps, n_weights) array of its 2-D weights' ratios.
    """
    meta = record["families"]["update_to_data"]
    title = "update:data over training, by run"
    if max(len(s) for s in series) > MAX_POINTS:
        title += f" (means of bins, at most {MAX_POINTS} points per line)"
    fig, axes = _grid(len(meta), True, True, title)
    low, high = record["thresholds"]["update_to_data_band"]
    binned = [bin_means(s) if len(s) else None for s in series]
    for k, (ax, info) in enumerate(zip(axes, meta, strict=True)):
        names = info["names"]
        same = len(set(names)) == 1
        ax.set_title(
            f"#{info['row']} " + (names[0] if same else "(weights differ)"),
            fontsize=10,
            y=1.0,
        )
        ax.axhspan(low, high, color="tab:green", alpha=0.08)
        ax.axhline(GUIDE, color="black", ls="--", lw=1)
        for i, run in enumerate(record["runs"]):
            if binned[i] is None or k >= binned[i][1].shape[1]:
                continue
            steps, means = binned[i]
            who = run["label"] if same else f"{run['label']} · {names[i]}"
            ax.plot(steps, means[:, k], color=_colour(i), lw=1.2, label=who)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.legend(fontsize=7, loc="lower right")
    _axis_labels(axes, "step", "log10 update:data")
    note = f"shaded: healthy band [{low:g}, {high:g}]; dashed: 1e-3 guide"
    fig.text(0.01, 0.005, note, fontsize=8)
    return _save(fig, path, tight=False)


def plot_compare(
    folder: Path, record: dict, hists: dict[str, list], series: list[np.ndarray]
) -> list[Path]:
    """Every comparison picture; `hists` maps act, grad and weight to aligned rows.

    With two or more cores a forked child draws the weight gradient and
    update:data figures (about half the drawing) while this process draws the rest.
    """
    paths = {f: folder / f"compare_{f}_hist.png" for f in hists}
    depth = folder / "compare_act_depth.png"
    updates = folder / "compare_update_to_data.png"
    weight = {f: rows for f, rows in hists.items() if f == "weight"}
    others = {f: rows for f, rows in hists.items() if f != "weight"}
    child = [
        (plot_compare_hists, (record, weight, paths)),
        (plot_compare_updates, (record, series, updates)),
    ]
    here = [
        (plot_compare_hists, (record, others, paths)),
        (plot_compare_depth, (record, depth)),
    ]
    _draw_split(child, here)
    return [*paths.values(), depth, updates]


def _draw_split(child: list, here: list) -> None:
    """Run the `child` jobs in a forked process and the `here` jobs in this one.

    Draws everything here when fork is unavailable or there is a single core,
    and redraws the child's pictures here when the child fails.
    """
    proc = None
    if child and _can_fork():
        proc = _fork(child)
    else:
        here = child + here
    try:
        _run_jobs(here)
    finally:
        if proc is not None:
            proc.join()
            gc.unfreeze()
    if proc is not None and proc.exitcode != 0:
        _run_jobs(child)


def _fork(jobs: list):
    """Start a forked process that runs `jobs`; the parent joins it, then unfreezes.

    Objects made so far are left out of garbage collection in both processes
    until then: the collector neither walks them nor writes to their memory,
    which the two processes share until one of them writes to it.
    NOTE: unfreezing thaws every frozen object, any a caller froze included.
    """
    # flushed first, so that the child cannot print buffered text a second time
    sys.stdout.flush()
    sys.stderr.flush()
    gc.freeze()
    proc = multiprocessing.get_context("fork").Process(
        target=_child_jobs, args=(jobs,), daemon=True
    )
    try:
        proc.start()
    except BaseException:
        gc.unfreeze()
        raise
    return proc


def _can_fork() -> bool:
    """Whether a forked drawing process can run beside this one.

    Not from a daemon process (it may not have children) nor beside other
    threads (a fork copies only the calling one, and any lock it does not hold).
    """
    if "fork" not in multiprocessing.get_all_start_methods():
        return False
    if multiprocessing.current_process().daemon or threading.active_count() > 1:
        return False
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    return cores >= 2


def _child_jobs(jobs: list) -> None:
    # a failure exits quietly: the parent redraws and reports any error itself
    try:
        _run_jobs(jobs)
    except BaseException:
        os._exit(1)


def _run_jobs(jobs: list) -> None:
    for fn, args in jobs:
        fn(*args)


def plot_saturation_map(
    saturated: np.ndarray, step: int, act: dict, threshold: float, path: Path
) -> Path:
    """Examples by units, light where |t| > threshold; a light column is a dead unit.

    Args: saturated (batch, units) bool; act is the layer's activation record.
    """
    batch, units = saturated.shape
    dead = np.flatnonzero(saturated.all(axis=0))
    fig = _new_figure(figsize=(10, 1.2 + 0.06 * batch), dpi=110)
    ax = fig.subplots()
    ax.imshow(
        saturated, cmap="gray", vmin=0, vmax=1, aspect="auto", interpolation="nearest"
    )

    # outline the dead units so they stand out from merely busy columns
    for unit in dead:
        ax.add_patch(
            Rectangle((unit - 0.5, -0.5), 1, batch, fill=False, edgecolor="red", lw=1.2)
        )
    outlined = " (outlined in red)" if len(dead) else ""
    ax.set_title(
        f"layer {act['layer']} ({act['kind']}) · step {step} · "
        f"|t| > {threshold:g} in white · dead units: {len(dead)} of {units}"
        f"{outlined}"
    )
    ax.set_xlabel("unit")
    ax.set_ylabel("example in batch")
    return _save(fig, path)


# ---------------------------------------------------------------------------
# sweeps: one figure compares every point; drawn from sweep.json and run records


def _panels(n: int, title: str, logy: bool = False):
    """A figure of `n` panels on shared axes, at most four to a row."""
    cols = min(n, 4)
    rows = -(-n // cols)
    size = (3.4 * cols + 1.8, 2.7 * rows + 0.7)
    fig = _new_figure(figsize=size, dpi=110, layout="constrained")
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    fig.suptitle(title)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    for i, ax in enumerate(flat[:n]):
        ax.grid(alpha=0.3)
        if logy:
            ax.set_yscale("log")
        # the panels with none below them carry the x tick labels
        if i + cols >= n:
            ax.xaxis.set_tick_params(labelbottom=True)
    return fig, flat[:n]


def _point_title(point: dict) -> str:
    status = "" if point["status"] == "ok" else f" ({point['status']})"
    return point["label"] + status


def _point_color(point: dict) -> str:
    """The same color for a point in every figure, records missing or not."""
    return f"C{point['point'] % 10}"


def _at_title(points: list[dict]) -> str:
    steps = sorted({p["at_step"] for p in points if p["at_step"] is not None})
    return f"step {steps[0]}" if len(steps) == 1 else "first snapshot of each point"


def _snapshot_at(run: dict | None, step: int | None) -> dict | None:
    if run is None or step is None:
        return None
    return next((s for s in run["stats"]["snapshots"] if s["step"] == step), None)


def _legend_order(labels: list[str]):
    """Sort key: `layer N ...` / `param N ...` by N, everything else after, as given."""

    def key(label: str) -> tuple[int, int]:
        words = label.split()
        if len(words) > 1 and words[0] in ("layer", "param") and words[1].isdigit():
            return 0, int(words[1])
        return 1, labels.index(label)

    return key


def _colors(keys) -> dict:
    """One color per key (a layer or a param), the same in every panel."""
    keys = sorted(set(keys))
    cmap = colormaps["tab10" if len(keys) <= 10 else "tab20"]
    return {key: cmap(i % cmap.N) for i, key in enumerate(keys)}


def _no_record(ax) -> None:
    ax.text(0.5, 0.5, "no record", ha="center", va="center", transform=ax.transAxes)


def _finish(fig, axes, xlabel: str, ylabel: str, path: Path) -> Path:
    """Label the outer panels, add one legend right of them, save without re-layout."""
    cols = axes[0].get_gridspec().ncols
    for i, ax in enumerate(axes):
        if i + cols >= len(axes):
            ax.set_xlabel(xlabel, fontsize=9)
        if i % cols == 0:
            ax.set_ylabel(ylabel, fontsize=9)
    entries: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    labels = sorted(entries, key=_legend_order(list(entries)))
    if labels:
        fig.legend(
            [entries[label] for label in labels],
            labels,
            loc="outside right upper",
            fontsize=8,
        )
    write_bytes_atomic(path, _png(fig))
    return path


def plot_sweep_depth(record: dict, path: Path) -> Path:
    """Activation std, saturated % and gradient std against layer, a line per point."""
    points = [p for p in record["points"] if p["layers"]]
    has_sat = any(r["saturated"] is not None for p in points for r in p["layers"])
    keys = ["act_std", "saturated", "grad_std"] if has_sat else ["act_std", "grad_std"]
    names = {
        "act_std": "activation std",
        "saturated": "saturated (% with |t| > 0.97)",
        "grad_std": "activation gradient std (log)",
    }
    size = (4.2 * len(keys) + 1.8, 4.0)
    fig = _new_figure(figsize=size, dpi=110, layout="constrained")
    axes = fig.subplots(1, len(keys), sharex=True)
    fig.suptitle(f"per-layer statistics against depth · {_at_title(points)}")
    layers = sorted({r["layer"] for p in points for r in p["layers"]})
    for ax, key in zip(axes, keys, strict=True):
        for p in points:
            xs = [r["layer"] for r in p["layers"]]
            ys = [np.nan if r[key] is None else r[key] for r in p["layers"]]
            ax.plot(xs, ys, marker="o", color=_point_color(p), label=_point_title(p))
        ax.set_title(names[key], fontsize=10)
        ax.grid(alpha=0.3)
        ax.set_xticks(layers)
        if key == "grad_std":
            ax.set_yscale("log")
        elif key == "act_std":
            ax.set_ylim(bottom=0)
    return _finish(fig, list(axes), "layer (index in the flat list)", "", path)


def plot_sweep_hists(
    record: dict, runs: list[dict | None], part: str, path: Path
) -> Path:
    """Small multiples of one part's histograms (activations or gradients) per point.

    Gradient densities span orders of magnitude between gains, so their axis is log.
    """
    points = record["points"]
    what = "activation" if part == "activations" else "activation gradient"
    title = f"{what} distribution per point · {_at_title(points)}"
    fig, axes = _panels(len(points), title, logy=part == "gradients")
    snapshots = [
        _snapshot_at(run, p["at_step"]) for p, run in zip(points, runs, strict=True)
    ]
    colors = _colors(
        (r["layer"], r["kind"]) for snap in snapshots if snap for r in snap[part]
    )
    for ax, point, snapshot in zip(axes, points, snapshots, strict=True):
        ax.set_title(_point_title(point), fontsize=9)
        if snapshot is None:
            _no_record(ax)
            continue
        for r in snapshot[part]:
            if r.get("hist") is not None:
                edges = np.asarray(r["hist"]["edges"])
                density = np.asarray(r["hist"]["density"], dtype=float)
                if part == "gradients":
                    density[density <= 0] = np.nan
                ax.plot(
                    (edges[:-1] + edges[1:]) / 2,
                    density,
                    lw=1,
                    color=colors[(r["layer"], r["kind"])],
                    label=f"layer {r['layer']} ({r['kind']})",
                )
    return _finish(fig, axes, f"{what} value", "density", path)


def plot_sweep_update_to_data(
    record: dict, runs: list[dict | None], path: Path
) -> Path:
    """log10 update:data of every 2-D weight over the steps, a panel per point."""
    points = record["points"]
    fig, axes = _panels(len(points), "update:data ratio over training, per point")
    weights = [
        [p for p in run["stats"]["params"] if len(p["shape"]) == 2] if run else []
        for run in runs
    ]
    colors = _colors(p["param"] for ps in weights for p in ps)
    for ax, point, run, params in zip(axes, points, runs, weights, strict=True):
        ax.set_title(_point_title(point), fontsize=9)
        if run is None or not len(run["series"]["update_to_data"]):
            _no_record(ax)
            continue
        ud = run["series"]["update_to_data"]
        steps = np.arange(1, len(ud) + 1)
        marker = "o" if len(ud) < 20 else None
        if marker:
            ax.set_xticks(steps)
        for p in params:
            shape = "x".join(str(n) for n in p["shape"])
            ax.plot(
                steps,
                ud[:, p["param"]],
                lw=0.9,
                marker=marker,
                color=colors[p["param"]],
                label=f"param {p['param']} ({shape})",
            )
        ax.axhline(GUIDE, color="black", ls="--", lw=1.2, label="1e-3 guide")
    return _finish(fig, axes, "step", "log10 update:data", path)


def plot_sweep_loss(record: dict, runs: list[dict | None], path: Path) -> Path:
    """Training loss of every point on one axes (running mean over ~1% of the run)."""
    title = "training loss per point (running mean over ~1% of the steps)"
    fig, ax = _figure(title, "step", "cross-entropy loss")
    for point, run in zip(record["points"], runs, strict=True):
        if run is None or not len(run["series"]["loss"]):
            continue
        loss = run["series"]["loss"]
        window = max(1, len(loss) // 100)
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        marker = "o" if len(loss) < 20 else None
        if marker:
            ax.set_xticks(np.arange(1, len(loss) + 1))
        ax.plot(
            np.arange(window, len(loss) + 1),
            smooth,
            lw=1.2,
            marker=marker,
            color=_point_color(point),
            label=_point_title(point),
        )
    if ax.lines:
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_sweep(
    sweep_dir: Path,
    record: dict,
    runs: list[dict | None],
    names: list[str] | None = None,
) -> list[Path]:
    """Draw the figures of a sweep (all, or those in `names`); return their paths."""
    figures = {
        "sweep_depth.png": lambda path: plot_sweep_depth(record, path),
        "sweep_act_hist.png": lambda path: plot_sweep_hists(
            record, runs, "activations", path
        ),
        "sweep_grad_hist.png": lambda path: plot_sweep_hists(
            record, runs, "gradients", path
        ),
        "sweep_update_to_data.png": lambda path: plot_sweep_update_to_data(
            record, runs, path
        ),
        "sweep_loss.png": lambda path: plot_sweep_loss(record, runs, path),
    }
    return [
        draw(sweep_dir / name)
        for name, draw in figures.items()
        if names is None or name in names
    ]
