"""Rich tables of a run's records, formatted as the lecture printed them.

Reads plain records (a stats.json mapping and the series arrays); never a model.
"""

from __future__ import annotations

import numpy as np
from rich.table import Table
from rich.text import Text

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
