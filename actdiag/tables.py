"""Rich tables of a run's records, formatted as the lecture printed them.

Reads plain records (a stats.json mapping and the series arrays); never a model.
"""

from __future__ import annotations

import numpy as np
from rich.table import Table

from actdiag.artifacts import GUIDE

NA = "n/a"


def fmt(value: float | None, spec: str) -> str:
    """Format `value` with `spec`, or n/a when it is undefined."""
    return NA if value is None else format(value, spec)


def activation_table(snapshot: dict) -> Table:
    """Forward activations: mean, std and percent saturated per watched layer."""
    table = Table(title=f"activations · step {snapshot['step']}", title_justify="left")
    for name in ("layer", "kind", "mean", "std", "saturated"):
        table.add_column(name, justify="left" if name == "kind" else "right")
    for a in snapshot["activations"]:
        sat = NA if a.get("saturated") is None else f"{a['saturated']:.2f}%"
        table.add_row(str(a["layer"]), a["kind"], fmt(a["mean"], "+.2f"),
                      fmt(a["std"], ".2f"), sat)
    return table


def gradient_table(snapshot: dict) -> Table:
    """Gradients of the watched activations: mean and std per layer."""
    table = Table(title=f"activation gradients · step {snapshot['step']}",
                  title_justify="left")
    for name in ("layer", "kind", "mean", "std"):
        table.add_column(name, justify="left" if name == "kind" else "right")
    for g in snapshot["gradients"]:
        table.add_row(str(g["layer"]), g["kind"], fmt(g["mean"], "+f"), fmt(g["std"], "e"))
    return table


def weight_table(snapshot: dict) -> Table:
    """Weight gradients: mean, std and grad:data ratio of every 2-D parameter."""
    table = Table(title=f"weight gradients · step {snapshot['step']}", title_justify="left")
    for name in ("param", "shape", "mean", "std", "grad:data"):
        table.add_column(name, justify="right")
    for w in snapshot["weights"]:
        shape = "(" + ", ".join(str(n) for n in w["shape"]) + ")"
        table.add_row(str(w["param"]), shape, fmt(w["mean"], "+f"), fmt(w["std"], "e"),
                      fmt(w["grad_to_data"], "e"))
    return table


def update_table(stats: dict, ud: np.ndarray) -> Table:
    """log10 update:data of every 2-D weight at the last step and over the last 10%."""
    steps = len(ud)
    tail = max(1, steps // 10)
    table = Table(title=f"update:data (log10, guide {GUIDE:g}) · {steps} steps",
                  title_justify="left")
    for name in ("param", "shape", "last step", f"mean of last {tail}"):
        table.add_column(name, justify="right")
    for p in stats["params"]:
        if len(p["shape"]) != 2:
            continue
        column = ud[-tail:, p["param"]] if steps else np.empty(0)
        finite = column[np.isfinite(column)]
        mean = float(finite.mean()) if len(finite) else None
        shape = "(" + ", ".join(str(n) for n in p["shape"]) + ")"
        table.add_row(str(p["param"]), shape, fmt(p.get("update_to_data"), "+.2f"),
                      fmt(mean, "+.2f"))
    return table


def run_tables(stats: dict, ud: np.ndarray) -> list[Table]:
    """Every table of a run: three per snapshot, then the update:data summary."""
    tables = []
    for snapshot in stats["snapshots"]:
        tables += [activation_table(snapshot), gradient_table(snapshot), weight_table(snapshot)]
    tables.append(update_table(stats, ud))
    return tables



# ---------------------------------------------------------------------------
# sweeps: points side by side, read from a sweep.json record alone


def _at_title(points: list[dict]) -> str:
    steps = sorted({p["at_step"] for p in points if p["at_step"] is not None})
    return f"step {steps[0]}" if len(steps) == 1 else "first snapshot of each point"


def _point_columns(title: str, first: tuple[str, ...], points: list[dict]) -> Table:
    """A table with `first` columns, then one right-aligned column per point."""
    table = Table(title=title, title_justify="left")
    for name in first:
        table.add_column(name, justify="left" if name == "kind" else "right")
    for p in points:
        table.add_column(p["label"], justify="right")
    return table


def sweep_layer_tables(record: dict) -> list[Table]:
    """Per watched layer, each point's activation std (saturated %) and gradient std."""
    points = record["points"]
    at = _at_title(points)
    acts = _point_columns(f"activation std (saturated) · {at}", ("layer", "kind"),
                          points)
    grads = _point_columns(f"activation gradient std · {at}", ("layer", "kind"), points)
    rows = sorted({(r["layer"], r["kind"]) for p in points for r in p["layers"]})
    by_layer = [{r["layer"]: r for r in p["layers"]} for p in points]
    for layer, kind in rows:
        act_cells, grad_cells = [], []
        for layers in by_layer:
            r = layers.get(layer)
            if r is None:
                act_cells.append(NA)
                grad_cells.append(NA)
                continue
            sat = "" if r["saturated"] is None else f" ({r['saturated']:.2f}%)"
            act_cells.append(fmt(r["act_std"], ".2f") + sat)
            grad_cells.append(fmt(r["grad_std"], ".2e"))
        acts.add_row(str(layer), kind, *act_cells)
        grads.add_row(str(layer), kind, *grad_cells)
    return [acts, grads]


def sweep_update_table(record: dict) -> Table:
    """log10 update:data of every 2-D weight at each point's last step."""
    points = record["points"]
    title = f"update:data at the last step (log10, guide {GUIDE:g})"
    table = _point_columns(title, ("param", "shape"), points)
    shapes = {u["param"]: u["shape"] for p in points for u in p["update_to_data"]}
    values = [{u["param"]: u["value"] for u in p["update_to_data"]} for p in points]
    for param in sorted(shapes):
        shape = "(" + ", ".join(str(n) for n in shapes[param]) + ")"
        cells = [fmt(v.get(param), "+.2f") for v in values]
        table.add_row(str(param), shape, *cells)
    return table


def _loss(value: float | None) -> str:
    """A loss with four decimals, or in e-notation when it has blown up."""
    return fmt(value, ".4f" if value is None or abs(value) < 1e4 else ".3e")


def sweep_point_table(record: dict) -> Table:
    """One row per point: status, steps, losses and the largest grad:data ratio."""
    at = _at_title(record["points"])
    table = Table(title="points", title_justify="left", caption_justify="left",
                  caption=f"loss: last step; max grad:data: {at}")
    # NOTE: the label may wrap; numbers never do
    table.add_column("point")
    table.add_column("status", no_wrap=True)
    for name in ("steps", "loss", "val loss", "max grad:data", "param"):
        table.add_column(name, justify="right", no_wrap=True, min_width=len(name))
    for p in record["points"]:
        top = p["grad_to_data_max"] or {}
        status = p["status"] if p["status"] == "ok" else f"[bold red]{p['status']}[/]"
        table.add_row(
            p["label"], status, NA if p["steps"] is None else str(p["steps"]),
            _loss(p["loss"]), _loss(p["val_loss"]), fmt(top.get("value"), ".2e"),
            str(top.get("param", NA)),
        )
    return table


def sweep_tables(record: dict) -> list[Table]:
    """Every table of a sweep: layers, update:data, then one row per point."""
    tables = []
    if any(p["layers"] for p in record["points"]):
        tables += sweep_layer_tables(record)
    if any(p["update_to_data"] for p in record["points"]):
        tables.append(sweep_update_table(record))
    tables.append(sweep_point_table(record))
    return tables
