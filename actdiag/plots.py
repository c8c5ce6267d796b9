"""PNG figures of a run, drawn from its records alone; the only matplotlib user.

One function per figure; all share `_figure` and `_save`.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402

from actdiag.artifacts import GUIDE, write_bytes_atomic  # noqa: E402


def _figure(title: str, xlabel: str, ylabel: str):
    fig, ax = plt.subplots(figsize=(12, 4.8), dpi=100)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if xlabel == "step":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig, ax


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())
    return path


def _legend_right(ax) -> None:
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def _param_label(p: dict) -> str:
    """`param 3 · layer 2.weight (100x100)`: its index, owner and shape."""
    shape = "x".join(str(n) for n in p["shape"])
    name = f" · {p['name']}" if p.get("name") else ""
    return f"param {p['param']}{name} ({shape})"


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


def plot_weight_grads(snapshot: dict, params: list[dict], path: Path) -> Path:
    """Density of each 2-D weight's gradient, labelled with its grad:data ratio."""
    fig, ax = _figure(f"weight gradient distribution · step {snapshot['step']}",
                      "gradient value", "density")

    names = {p["param"]: p.get("name") for p in params}

    def label(w):
        named = dict(w, name=names.get(w["param"]))
        return f"{_param_label(named)}: grad:data {_num(w['grad_to_data'], '.2e')}"

    _hist_lines(ax, snapshot["weights"], label)
    return _save(fig, path)


def plot_update_to_data(params: list[dict], ud: np.ndarray, path: Path) -> Path:
    """log10 update:data of every 2-D weight over the steps, with the -3 guide line."""
    steps, values = binned(ud)
    title = "update:data ratio over training"
    if len(steps) < len(ud):
        title += f" (mean of every {len(ud) // len(steps)} steps)"
    fig, ax = _figure(title, "step", "log10(std(lr·grad) / std(weight))")
    marker = "o" if len(ud) < 20 else None
    for p in params:
        if len(p["shape"]) == 2:
            ax.plot(steps, values[:, p["param"]], marker=marker, lw=1, label=_param_label(p))
    ax.axhline(GUIDE, color="black", ls="--", lw=1.2, label="1e-3 guide")
    _legend_right(ax)
    return _save(fig, path)


def plot_loss(loss: np.ndarray, path: Path) -> Path:
    """Training loss per step (faint) and its mean over runs of ~1% of the steps."""
    fig, ax = _figure("training loss", "step", "cross-entropy loss")
    steps, values = binned(loss)
    marker = "o" if len(loss) < 20 else None
    ax.plot(steps, values, color="tab:blue", alpha=0.35, lw=0.6, marker=marker,
            label="per step" if len(steps) == len(loss) else "binned per-step mean")
    centres, means = binned(loss, bins=min(100, len(loss)))
    if len(loss) >= 200:
        ax.plot(centres, means, color="tab:blue", lw=1.8,
                label=f"mean of every {len(loss) // len(centres)} steps")
    _legend_right(ax)
    return _save(fig, path)


def plot_run(run_dir: Path, stats: dict, series: dict[str, np.ndarray]) -> list[Path]:
    """Every figure of a run directory; returns the paths written."""
    paths = []
    for snap in stats["snapshots"]:
        k = snap["step"]
        paths.append(plot_activations(snap, run_dir / f"act_hist_step{k}.png"))
        paths.append(plot_gradients(snap, run_dir / f"grad_hist_step{k}.png"))
        paths.append(plot_weight_grads(snap, stats["params"],
                                       run_dir / f"weight_grad_hist_step{k}.png"))
    if len(series["loss"]):
        paths.append(plot_update_to_data(stats["params"], series["update_to_data"],
                                         run_dir / "update_to_data.png"))
        paths.append(plot_loss(series["loss"], run_dir / "loss.png"))
    return paths
