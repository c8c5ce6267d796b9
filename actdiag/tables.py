"""Rich tables of a run's records, formatted as the lecture printed them.

Reads plain records (a stats.json mapping and the series arrays); never a model.
"""

from __future__ import annotations

import numpy as np
from rich.table import Table
from rich.text import Text

from actdiag.artifacts import GUIDE
from actdiag.text import NA, change_text, fmt, shape_text, show_value


def activation_table(snapshot: dict) -> Table:
    """Forward activations: mean, std and percent saturated per watched layer."""
    table = Table(title=f"activations · step {snapshot['step']}", title_justify="left")
    for name in ("layer", "kind", "mean", "std", "saturated"):
        table.add_column(name, justify="left" if name == "kind" else "right")
    for a in snapshot["activations"]:
        sat = NA if a.get("saturated") is None else f"{a['saturated']:.2f}%"
        table.add_row(
            str(a["layer"]),
            a["kind"],
            fmt(a["mean"], "+.2f"),
            fmt(a["std"], ".2f"),
            sat,
        )
    return table


def gradient_table(snapshot: dict) -> Table:
    """Gradients of the watched activations: mean and std per layer."""
    table = Table(
        title=f"activation gradients · step {snapshot['step']}", title_justify="left"
    )
    for name in ("layer", "kind", "mean", "std"):
        table.add_column(name, justify="left" if name == "kind" else "right")
    for g in snapshot["gradients"]:
        table.add_row(
            str(g["layer"]), g["kind"], fmt(g["mean"], "+f"), fmt(g["std"], "e")
        )
    return table


def weight_table(snapshot: dict) -> Table:
    """Weight gradients: mean, std and grad:data ratio of every 2-D parameter."""
    table = Table(
        title=f"weight gradients · step {snapshot['step']}", title_justify="left"
    )
    for name in ("param", "shape", "mean", "std", "grad:data"):
        table.add_column(name, justify="right")
    for w in snapshot["weights"]:
        shape = shape_text(w["shape"])
        table.add_row(
            str(w["param"]),
            shape,
            fmt(w["mean"], "+f"),
            fmt(w["std"], "e"),
            fmt(w["grad_to_data"], "e"),
        )
    return table


def update_table(stats: dict, ud: np.ndarray) -> Table:
    """log10 update:data of every 2-D weight at the last step and over the last 10%."""
    steps = len(ud)
    tail = max(1, steps // 10)
    table = Table(
        title=f"update:data (log10, guide {GUIDE:g}) · {steps} steps",
        title_justify="left",
    )
    names = ("param", "shape", "last step", f"mean of last {tail}")
    for name in names if tail > 1 else names[:3]:
        table.add_column(name, justify="right")
    for p in stats["params"]:
        if len(p["shape"]) != 2:
            continue
        column = ud[-tail:, p["param"]] if steps else np.empty(0)
        finite = column[np.isfinite(column)]
        mean = float(finite.mean()) if len(finite) else None
        shape = shape_text(p["shape"])
        cells = [str(p["param"]), shape, fmt(p.get("update_to_data"), "+.2f")]
        table.add_row(*cells, *([fmt(mean, "+.2f")] if tail > 1 else []))
    return table


def run_tables(stats: dict, ud: np.ndarray) -> list[Table]:
    """Every table of a run: three per snapshot, then the update:data summary."""
    tables = []
    for snapshot in stats["snapshots"]:
        tables += [
            activation_table(snapshot),
            gradient_table(snapshot),
            weight_table(snapshot),
        ]
    tables.append(update_table(stats, ud))
    return tables


# ---------------------------------------------------------------------------
# comparison of runs (records from actdiag.compare)

DASH = "-"
# (family, stat) -> format; activations as the lecture printed them
STAT_FORMATS = {
    ("act", "std"): ".2f",
    ("act", "saturated"): ".2f",
    ("update_to_data", "update_to_data"): "+.2f",
}
STAT_NAMES = {
    "std": "std",
    "saturated": "saturated %",
    "grad_to_data": "grad:data",
    "update_to_data": "update:data",
}


def config_diff_table(record: dict) -> Table:
    """The config keys that differ, a column per run, then what each run reached."""
    runs = record["runs"]
    lines = [f"{r['label']}: {r['path']}" for r in runs]
    table = Table(
        title="config difference (only keys that differ)",
        title_justify="left",
        caption="\n".join(lines),
        caption_justify="left",
    )
    table.add_column("key")
    for r in runs:
        table.add_column(r["label"], justify="right")
    for key, values in record["config_diff"].items():
        table.add_row(key, *(show_value(v) for v in values))
    if not record["config_diff"]:
        table.add_row("(none)", *("identical" for _ in runs))
    table.add_section()
    table.add_row("steps run", *(str(r["steps"]) for r in runs))
    table.add_row("compared step", *(str(r["step"]) for r in runs))
    table.add_row("loss at that step", *(fmt(r["step_loss"], ".4f") for r in runs))
    table.add_row("final loss", *(fmt(r["loss"], ".4f") for r in runs))
    table.add_row("val loss", *(fmt(r["val_loss"], ".4f") for r in runs))
    return table


def _cell(cell: dict, spec: str, i: int) -> str:
    value = cell["values"][i]
    if value is None:
        return DASH
    text = format(value, spec)
    if i > 0 and cell["changes"][i] is not None:
        text += " " + change_text(cell["changes"][i], cell["change"])
    if cell["crossed"][i]:
        text = f"[bold]{text} {'!' if cell['unhealthy'][i] else 'ok'}[/]"
    return f"[red]{text}[/]" if cell["unhealthy"][i] else text


def _row_label(row: dict) -> str:
    names, members = row["names"], row["members"]
    if len(set(names)) == 1:
        return names[0] or DASH
    present = [m for m in members if m is not None]
    if "layer" in present[0]:
        ids = " | ".join(DASH if m is None else str(m["layer"]) for m in members)
        kinds = {m["kind"] for m in present}
        return (
            f"layer {ids} ({kinds.pop()})"
            if len(kinds) == 1
            else " | ".join(
                DASH if m is None else f"{m['layer']} ({m['kind']})" for m in members
            )
        )
    shapes = {tuple(m["shape"]) for m in present}
    if len(shapes) == 1:
        ids = " | ".join(DASH if m is None else str(m["param"]) for m in members)
        return f"param {ids} ({'x'.join(map(str, shapes.pop()))})"
    return "param " + " | ".join(
        DASH if m is None else f"{m['param']} ({'x'.join(map(str, m['shape']))})"
        for m in members
    )


def _family_caption(record: dict, family: str) -> str:
    t = record["thresholds"]
    first = record["runs"][0]["label"]
    lines = [f"vs {first}: ×ratio for spreads, +difference otherwise"]
    marks = "; ! newly past it, ok back within it"
    if family == "act":
        lines.append(f"red: saturated above {t['saturated_max']:g} %{marks}")
    if family == "weight":
        lines.append(
            f"red: grad:data above {t['grad_to_data_outlier']:g}x the run's "
            f"median{marks}"
        )
    if family == "update_to_data":
        low, high = t["update_to_data_band"]
        lines.append(f"mean of the last {t['update_to_data_window']:.0%} of steps")
        lines.append(f"red: outside [{low:g}, {high:g}]{marks}")
    return "\n".join(lines)


def family_table(record: dict, family: str, title: str, stats: list[str]) -> Table:
    """One family: a row per aligned layer or weight, a column per run."""
    runs = record["runs"]
    steps = sorted({r["step"] for r in runs})
    where = "step " + " / ".join(map(str, steps))
    if family == "update_to_data":
        where = "up to " + where
    table = Table(
        title=f"{title} · {where}",
        title_justify="left",
        min_width=72,
        caption=_family_caption(record, family),
        caption_justify="left",
    )
    table.add_column("#", justify="right")
    table.add_column("layer" if family in ("act", "grad") else "weight")
    if len(stats) > 1:
        table.add_column("stat")
    for r in runs:
        table.add_column(r["label"], justify="right")
    for n, row in enumerate(record["families"][family]):
        if n and len(stats) > 1:
            table.add_section()
        for j, stat in enumerate(stats):
            head = [str(row["row"]), _row_label(row)] if j == 0 else ["", ""]
            if len(stats) > 1:
                head.append(STAT_NAMES[stat])
            spec = STAT_FORMATS.get((family, stat), ".2e")
            cells = [_cell(row["stats"][stat], spec, i) for i in range(len(runs))]
            table.add_row(*head, *cells)
    if not record["families"][family]:
        table.add_row("", "(no row moved)")
    return table


def compare_tables(
    record: dict, titles: dict[str, str], shown: dict[str, list[str]]
) -> list[Table]:
    """The config difference, then one table per family in `titles` order."""
    tables = [config_diff_table(record)]
    for family, title in titles.items():
        tables.append(family_table(record, family, title, shown[family]))
    return tables


SEVERITY_STYLE = {"bad": "bold red", "warn": "bold yellow", "info": "bold green"}


def findings_text(findings: list[dict]) -> Text:
    """The findings as a short list: severity, message, then what to try."""
    text = Text("findings\n", style="bold")
    for i, f in enumerate(findings):
        text.append(f"{f['severity'].upper():>4} ", style=SEVERITY_STYLE[f["severity"]])
        text.append(f"{f['message']}\n")
        following = findings[i + 1] if i + 1 < len(findings) else None
        # the advice once per run of findings that share it
        if following is None or following["advice"] != f["advice"]:
            text.append(f"     try: {f['advice']}\n", style="dim")
    text.rstrip()
    return text


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
    acts = _point_columns(
        f"activation std (saturated) · {at}", ("layer", "kind"), points
    )
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
        shape = shape_text(shapes[param])
        cells = [fmt(v.get(param), "+.2f") for v in values]
        table.add_row(str(param), shape, *cells)
    return table


def _loss(value: float | None) -> str:
    """A loss with four decimals, or in e-notation when it has blown up."""
    return fmt(value, ".4f" if value is None or abs(value) < 1e4 else ".3e")


def sweep_point_table(record: dict) -> Table:
    """One row per point: status, steps, losses and the largest grad:data ratio."""
    at = _at_title(record["points"])
    table = Table(
        title="points",
        title_justify="left",
        caption_justify="left",
        caption=f"loss: last step; max grad:data: {at}",
    )
    # NOTE: the label may wrap; numbers never do
    table.add_column("point")
    table.add_column("status", no_wrap=True)
    for name in ("steps", "loss", "val loss", "max grad:data", "param"):
        table.add_column(name, justify="right", no_wrap=True, min_width=len(name))
    for p in record["points"]:
        top = p["grad_to_data_max"] or {}
        status = p["status"] if p["status"] == "ok" else f"[bold red]{p['status']}[/]"
        table.add_row(
            p["label"],
            status,
            NA if p["steps"] is None else str(p["steps"]),
            _loss(p["loss"]),
            _loss(p["val_loss"]),
            fmt(top.get("value"), ".2e"),
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
