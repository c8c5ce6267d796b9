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

from actdiag.artifacts import GUIDE, saturation_png, write_bytes_atomic  # noqa: E402


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


def plot_run(run_dir: Path, stats: dict, series: dict[str, np.ndarray],
             maps: dict[tuple[int, int], np.ndarray] | None = None) -> list[Path]:
    """Every figure of a run directory; returns the paths written.

    `maps` is {(step, layer): (batch, units) bool}, as `read_saturation_maps` gives.
    """
    paths = []
    maps = maps or {}
    threshold = stats["config"].get("dead_threshold", 0.99)
    for snap in stats["snapshots"]:
        k = snap["step"]
        paths.append(plot_activations(snap, run_dir / f"act_hist_step{k}.png"))
        paths.append(plot_gradients(snap, run_dir / f"grad_hist_step{k}.png"))
        paths.append(plot_weight_grads(snap, run_dir / f"weight_grad_hist_step{k}.png"))
        for a in snap["activations"]:
            if (k, a["layer"]) in maps:
                path = run_dir / saturation_png(k, a["layer"])
                paths.append(plot_saturation_map(maps[(k, a["layer"])], k, a,
                                                 threshold, path))
    if len(series["loss"]):
        paths.append(plot_update_to_data(stats["params"], series["update_to_data"],
                                         run_dir / "update_to_data.png"))
        paths.append(plot_loss(series["loss"], run_dir / "loss.png"))
    return paths


def plot_saturation_map(saturated: np.ndarray, step: int, act: dict, threshold: float,
                        path: Path) -> Path:
    """Examples by units, light where |t| > threshold; a light column is a dead unit.

    Args: saturated (batch, units) bool; act is the layer's activation record.
    """
    batch, units = saturated.shape
    dead = np.flatnonzero(saturated.all(axis=0))
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.06 * batch), dpi=110)
    ax.imshow(saturated, cmap="gray", vmin=0, vmax=1, aspect="auto",
              interpolation="nearest")

    # outline the dead units so they stand out from merely busy columns
    for unit in dead:
        ax.add_patch(plt.Rectangle((unit - 0.5, -0.5), 1, batch, fill=False,
                                   edgecolor="red", lw=1.2))
    outlined = " (outlined in red)" if len(dead) else ""
    ax.set_title(f"layer {act['layer']} ({act['kind']}) · step {step} · "
                 f"|t| > {threshold:g} in white · dead units: {len(dead)} of {units}"
                 f"{outlined}")
    ax.set_xlabel("unit")
    ax.set_ylabel("example in batch")
    return _save(fig, path)
