"""PNG figures of a run, drawn from its records alone; the only matplotlib user.

One function per figure; all share `_figure` and `_save`.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from actdiag.artifacts import GUIDE, write_bytes_atomic  # noqa: E402


def _figure(title: str, xlabel: str, ylabel: str):
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=110)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return fig, ax


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())
    return path


def _hist_lines(ax, records: list[dict], label) -> None:
    for r in records:
        hist = r.get("hist")
        if hist is None:
            continue
        edges = np.asarray(hist["edges"])
        centers = (edges[:-1] + edges[1:]) / 2
        ax.plot(centers, hist["density"], label=label(r))
    if ax.lines:
        ax.legend(fontsize=8)


def _num(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def plot_activations(snapshot: dict, path: Path) -> Path:
    """Density of each watched layer's output; mass piled at +-1 means saturation."""
    fig, ax = _figure(f"activation distribution · step {snapshot['step']}",
                      "activation value", "density")

    def label(a):
        sat = "" if a.get("saturated") is None else f", saturated {a['saturated']:.2f}%"
        return f"layer {a['layer']} ({a['kind']}): std {_num(a['std'], '.2f')}{sat}"

    _hist_lines(ax, snapshot["activations"], label)
    return _save(fig, path)


def plot_gradients(snapshot: dict, path: Path) -> Path:
    """Density of the gradient of each watched layer's output."""
    fig, ax = _figure(f"activation gradient distribution · step {snapshot['step']}",
                      "gradient value", "density")
    _hist_lines(ax, snapshot["gradients"],
                lambda g: f"layer {g['layer']} ({g['kind']}): std {_num(g['std'], '.2e')}")
    return _save(fig, path)


def plot_weight_grads(snapshot: dict, path: Path) -> Path:
    """Density of each 2-D weight's gradient, labelled with its grad:data ratio."""
    fig, ax = _figure(f"weight gradient distribution · step {snapshot['step']}",
                      "gradient value", "density")

    def label(w):
        shape = "x".join(str(n) for n in w["shape"])
        return f"param {w['param']} ({shape}): grad:data {_num(w['grad_to_data'], '.2e')}"

    _hist_lines(ax, snapshot["weights"], label)
    return _save(fig, path)


def plot_update_to_data(params: list[dict], ud: np.ndarray, path: Path) -> Path:
    """log10 update:data of every 2-D weight over the steps, with the -3 guide line."""
    fig, ax = _figure("update:data ratio over training", "step", "log10(std(lr·grad) / std(weight))")
    steps = np.arange(1, len(ud) + 1)
    marker = "o" if len(ud) < 20 else None
    for p in params:
        if len(p["shape"]) == 2:
            shape = "x".join(str(n) for n in p["shape"])
            ax.plot(steps, ud[:, p["param"]], marker=marker, lw=1,
                    label=f"param {p['param']} ({shape})")
    ax.axhline(GUIDE, color="black", ls="--", lw=1.2, label="1e-3 guide")
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def plot_loss(loss: np.ndarray, path: Path) -> Path:
    """Training loss per step (faint) and its running mean over ~1% of the run."""
    fig, ax = _figure("training loss", "step", "cross-entropy loss")
    steps = np.arange(1, len(loss) + 1)
    window = max(1, len(loss) // 100)
    marker = "o" if len(loss) < 20 else None
    ax.plot(steps, loss, color="tab:blue", alpha=0.3 if window > 1 else 1, lw=0.6,
            marker=marker, label="per step")
    if window > 1:
        kernel = np.ones(window) / window
        smooth = np.convolve(loss, kernel, mode="valid")
        ax.plot(steps[window - 1:], smooth, color="tab:blue", lw=1.5,
                label=f"mean of {window} steps")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_run(run_dir: Path, stats: dict, series: dict[str, np.ndarray]) -> list[Path]:
    """Every figure of a run directory; returns the paths written."""
    paths = []
    for snap in stats["snapshots"]:
        k = snap["step"]
        paths.append(plot_activations(snap, run_dir / f"act_hist_step{k}.png"))
        paths.append(plot_gradients(snap, run_dir / f"grad_hist_step{k}.png"))
        paths.append(plot_weight_grads(snap, run_dir / f"weight_grad_hist_step{k}.png"))
    if len(series["loss"]):
        paths.append(plot_update_to_data(stats["params"], series["update_to_data"],
                                         run_dir / "update_to_data.png"))
        paths.append(plot_loss(series["loss"], run_dir / "loss.png"))
    return paths



# ---------------------------------------------------------------------------
# sweeps: one figure compares every point; drawn from sweep.json and run records


def _grid(n: int, title: str, logy: bool = False):
    """A figure of `n` panels on shared axes, at most four to a row."""
    cols = min(n, 4)
    rows = -(-n // cols)
    size = (3.4 * cols + 1.8, 2.7 * rows + 0.7)
    fig, axes = plt.subplots(rows, cols, figsize=size, dpi=110, sharex=True,
                             sharey=True, squeeze=False, layout="constrained")
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
    cmap = plt.get_cmap("tab10" if len(keys) <= 10 else "tab20")
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
        fig.legend([entries[label] for label in labels], labels,
                   loc="outside right upper", fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())
    return path


def plot_sweep_depth(record: dict, path: Path) -> Path:
    """Activation std, saturated % and gradient std against layer, a line per point."""
    points = [p for p in record["points"] if p["layers"]]
    has_sat = any(r["saturated"] is not None for p in points for r in p["layers"])
    keys = ["act_std", "saturated", "grad_std"] if has_sat else ["act_std", "grad_std"]
    names = {"act_std": "activation std", "saturated": "saturated (% with |t| > 0.97)",
             "grad_std": "activation gradient std (log)"}
    size = (4.2 * len(keys) + 1.8, 4.0)
    fig, axes = plt.subplots(1, len(keys), figsize=size, dpi=110, sharex=True,
                             layout="constrained")
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


def plot_sweep_hists(record: dict, runs: list[dict | None], part: str,
                     path: Path) -> Path:
    """Small multiples of one part's histograms (activations or gradients) per point.

    Gradient densities span orders of magnitude between gains, so their axis is log.
    """
    points = record["points"]
    what = "activation" if part == "activations" else "activation gradient"
    title = f"{what} distribution per point · {_at_title(points)}"
    fig, axes = _grid(len(points), title, logy=part == "gradients")
    snapshots = [_snapshot_at(run, p["at_step"]) for p, run in zip(points, runs,
                                                                   strict=True)]
    colors = _colors((r["layer"], r["kind"]) for snap in snapshots if snap
                     for r in snap[part])
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
                ax.plot((edges[:-1] + edges[1:]) / 2, density, lw=1,
                        color=colors[(r["layer"], r["kind"])],
                        label=f"layer {r['layer']} ({r['kind']})")
    return _finish(fig, axes, f"{what} value", "density", path)


def plot_sweep_update_to_data(record: dict, runs: list[dict | None],
                              path: Path) -> Path:
    """log10 update:data of every 2-D weight over the steps, a panel per point."""
    points = record["points"]
    fig, axes = _grid(len(points), "update:data ratio over training, per point")
    weights = [[p for p in run["stats"]["params"] if len(p["shape"]) == 2]
               if run else [] for run in runs]
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
            ax.plot(steps, ud[:, p["param"]], lw=0.9, marker=marker,
                    color=colors[p["param"]], label=f"param {p['param']} ({shape})")
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
        ax.plot(np.arange(window, len(loss) + 1), smooth, lw=1.2, marker=marker,
                color=_point_color(point), label=_point_title(point))
    if ax.lines:
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_sweep(sweep_dir: Path, record: dict, runs: list[dict | None],
               names: list[str] | None = None) -> list[Path]:
    """Draw the figures of a sweep (all, or those in `names`); return their paths."""
    figures = {
        "sweep_depth.png": lambda path: plot_sweep_depth(record, path),
        "sweep_act_hist.png": lambda path: plot_sweep_hists(
            record, runs, "activations", path),
        "sweep_grad_hist.png": lambda path: plot_sweep_hists(
            record, runs, "gradients", path),
        "sweep_update_to_data.png": lambda path: plot_sweep_update_to_data(
            record, runs, path),
        "sweep_loss.png": lambda path: plot_sweep_loss(record, runs, path),
    }
    return [draw(sweep_dir / name) for name, draw in figures.items()
            if names is None or name in names]
