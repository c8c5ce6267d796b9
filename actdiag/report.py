"""Self-contained HTML pages: styles and pictures inside the file, nothing fetched.

A page is assembled from generic sections (title, findings, tables, images with
the numbers behind them) so any command can build one; `run_report`,
`sweep_report` and `compare_report` assemble the page of a run directory, a sweep
directory and a comparison folder from their files alone. Reads records, never a model;
draws nothing (the PNGs come from plots.py).
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np

from actdiag import artifacts, findings
from actdiag.artifacts import GUIDE
from actdiag.errors import ActdiagError
from actdiag.text import change_text, fmt, shape_text, show_value

MAX_ROWS = 400  # longer series are shown at evenly spaced steps

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; color: #1d232a; margin: 0;
       background: #f6f7f9; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 60px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 34px 0 10px; border-bottom: 1px solid #d5d9de;
     padding-bottom: 4px; }
h3 { font-size: 16px; margin: 22px 0 6px; }
.meta { color: #56606b; margin: 0 0 6px; }
nav a { margin-right: 14px; color: #2458a6; }
table { border-collapse: collapse; margin: 6px 0 14px; background: #fff; }
th, td { border: 1px solid #d5d9de; padding: 3px 9px; text-align: right;
         font-variant-numeric: tabular-nums; }
th { background: #eef1f4; }
td.text, th.text { text-align: left; }
.finding { background: #fff; border: 1px solid #d5d9de; border-left: 6px solid;
           border-radius: 4px; padding: 8px 12px; margin: 8px 0; }
.finding.bad { border-left-color: #c62828; }
.finding.warn { border-left-color: #e6a100; }
.finding.info { border-left-color: #2e7d32; }
.badge { display: inline-block; min-width: 44px; text-align: center; color: #fff;
         border-radius: 3px; font-size: 12px; font-weight: 600; padding: 1px 6px;
         margin-right: 8px; text-transform: uppercase; }
.bad .badge { background: #c62828; } .warn .badge { background: #b07b00; }
.info .badge { background: #2e7d32; }
.rule { color: #56606b; font-size: 13px; }
.finding ul { margin: 4px 0; padding-left: 22px; }
.advice { margin-top: 4px; }
figure { background: #fff; border: 1px solid #d5d9de; border-radius: 4px;
         margin: 12px 0; padding: 10px; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { color: #3b444d; margin: 6px 0; }
details { margin: 4px 0; }
summary { cursor: pointer; color: #2458a6; }
.missing { color: #8a4b00; }
td.unhealthy { color: #c62828; }
td.crossed { font-weight: 700; background: #fff4d6; }
td.status-ok { color: #2e7d32; }
td.status-bad { color: #c62828; font-weight: 600; }
.point { margin: 26px 0 8px; }
"""


# ---------------------------------------------------------------------------
# generic sections: each returns an HTML fragment


def esc(value) -> str:
    """HTML-escape any value as text."""
    return html.escape(str(value))


def section(title: str, body: str, anchor: str) -> str:
    """A titled part of the page that the navigation links to."""
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>\n{body}</section>\n'


@dataclass(frozen=True)
class Cell:
    """A table cell with CSS classes, or with markup that is already escaped."""

    text: str
    classes: str = ""
    markup: bool = False


def table(
    columns: list[str],
    rows: list[list],
    title: str = "",
    text_columns: tuple[int, ...] = (),
    caption: str = "",
) -> str:
    """A plain table; `text_columns` are left-aligned, the rest are numbers.

    A cell may be a `Cell` to carry classes or a link; `caption` goes below.
    """

    def cell(tag: str, i: int, value) -> str:
        classes = ["text"] if i in text_columns else []
        text = esc(value)
        if isinstance(value, Cell):
            classes += value.classes.split()
            text = value.text if value.markup else esc(value.text)
        cls = f' class="{" ".join(classes)}"' if classes else ""
        return f"<{tag}{cls}>{text}</{tag}>"

    head = "".join(cell("th", i, c) for i, c in enumerate(columns))
    body = "\n".join(
        "<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>"
        for row in rows
    )
    heading = f"<h3>{esc(title)}</h3>\n" if title else ""
    below = f'<p class="rule">{esc(caption)}</p>\n' if caption else ""
    return f"{heading}<table><tr>{head}</tr>\n{body}</table>\n{below}"


def numbers(
    columns: list[str], rows: list[list], label: str, text_columns: tuple[int, ...] = ()
) -> str:
    """A folded table holding the numbers behind a picture."""
    return (
        f"<details><summary>{esc(label)}</summary>\n"
        f"{table(columns, rows, '', text_columns)}</details>\n"
    )


def image(title: str, png: bytes | None, caption: str, data: str = "") -> str:
    """A picture embedded as base64 PNG, its caption and the numbers behind it."""
    if png is None:
        img = '<p class="missing">picture not drawn in this run directory</p>'
    else:
        src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        img = f'<img alt="{esc(title)}" src="{src}">'
    return (
        f"<figure><h3>{esc(title)}</h3>{img}\n"
        f"<figcaption>{esc(caption)}</figcaption>\n{data}</figure>\n"
    )


def findings_list(items: list[dict]) -> str:
    """Findings as coloured cards; findings sharing severity, rule and advice share one.

    Each card gives the severity, every message with its value and threshold, and
    what to try once.
    """
    groups: list[list[dict]] = []
    for f in items:
        key = (f["severity"], f["rule"], f["advice"])
        if (
            groups
            and (
                groups[-1][0]["severity"],
                groups[-1][0]["rule"],
                groups[-1][0]["advice"],
            )
            == key
        ):
            groups[-1].append(f)
        else:
            groups.append([f])
    counts = {s: sum(f["severity"] == s for f in items) for s in findings.SEVERITIES}
    head = (
        f"<p>{len(items)} findings: {counts['bad']} bad, {counts['warn']} warn, "
        f"{counts['info']} info. Each names the rule, the measured value and the "
        "threshold it crossed (set in the config), and what to try.</p>\n"
    )
    return head + "\n".join(_card(group) for group in groups) + "\n"


def _card(group: list[dict]) -> str:
    first = group[0]
    lines = []
    for f in group:
        measured = [f"value {_num(f['value'])}"] if f.get("value") is not None else []
        if f.get("threshold") is not None:
            measured.append(f"threshold {_num(f['threshold'])}")
        numbers = f' <span class="rule">({esc(", ".join(measured))})</span>'
        lines.append(f"<li>{esc(f['message'])}{numbers if measured else ''}</li>")
    return (
        f'<div class="finding {esc(first["severity"])}">'
        f'<span class="badge">{esc(first["severity"])}</span>'
        f'<span class="rule">rule {esc(first["rule"])}</span>'
        f"<ul>{''.join(lines)}</ul>"
        f'<div class="advice"><b>Try:</b> {esc(first["advice"])}</div></div>'
    )


def page(title: str, subtitle: str, sections: list[tuple[str, str, str]]) -> str:
    """A whole HTML document from (anchor, title, body) sections, with navigation."""
    nav = " ".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t, _ in sections)
    body = "".join(section(t, b, a) for a, t, b in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style></head>\n"
        f'<body><main><h1>{esc(title)}</h1>\n<p class="meta">{esc(subtitle)}</p>\n'
        f"<nav>{nav}</nav>\n{body}</main></body></html>\n"
    )


def _num(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"


def _every(n: int) -> np.ndarray:
    """Indices of at most MAX_ROWS evenly spaced rows of n, the last included."""
    if n <= MAX_ROWS:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, MAX_ROWS).round().astype(int))


# ---------------------------------------------------------------------------
# the run page


def _summary(stats: dict) -> str:
    loss = fmt(stats.get("loss"), ".4f")
    val = fmt(stats.get("val_loss"), ".4f")
    data = stats.get("data", {})
    steps = f"{stats['steps']} step" + ("" if stats["steps"] == 1 else "s")
    return (
        f"{steps} · final loss {loss} · val loss {val} · "
        f"{stats.get('n_params', '?')} parameters · data {data.get('path', '?')} "
        f"(vocab {data.get('vocab_size', '?')}) · device {stats.get('device', '?')}"
        f" · {stats.get('seconds', 0):.1f} s"
    )


def _pairs(items: list[tuple[str, object]], per_row: int = 4) -> list[list]:
    """key, value pairs laid out `per_row` to a table row."""
    flat = [
        x
        for key, value in items
        for x in (key, _num(value) if isinstance(value, float) else value)
    ]
    width = 2 * per_row
    rows = [flat[i : i + width] for i in range(0, len(flat), width)]
    return [row + [""] * (width - len(row)) for row in rows]


def _config_body(stats: dict) -> str:
    thresholds = stats.get("thresholds") or findings.thresholds_from(stats["config"])
    keys = [
        (k, "shipped names file" if k == "data" and v is None else show_value(v))
        for k, v in stats["config"].items()
        if k not in thresholds
    ]
    columns = ["key", "value"] * 4
    text = tuple(range(8))
    return table(columns, _pairs(keys), "resolved config", text) + table(
        columns,
        _pairs(list(thresholds.items())),
        "thresholds the findings used (config keys)",
        text,
    )


def _snapshot_tables(snap: dict, names: dict[int, str]) -> str:
    k = snap["step"]
    acts = [
        [
            a["layer"],
            a["kind"],
            fmt(a["mean"], "+.2f"),
            fmt(a["std"], ".2f"),
            "n/a" if a.get("saturated") is None else f"{a['saturated']:.2f}%",
            _num(a.get("dead_units")),
        ]
        for a in snap["activations"]
    ]
    grads = [
        [g["layer"], g["kind"], fmt(g["mean"], "+f"), fmt(g["std"], "e")]
        for g in snap["gradients"]
    ]
    weights = [
        [
            w["param"],
            names.get(w["param"], ""),
            shape_text(w["shape"]),
            fmt(w["mean"], "+f"),
            fmt(w["std"], "e"),
            fmt(w["grad_to_data"], "e"),
        ]
        for w in snap["weights"]
    ]
    return (
        table(
            ["layer", "kind", "mean", "std", "saturated", "dead units"],
            acts,
            f"activations · step {k} (loss {fmt(snap.get('loss'), '.4f')})",
            (1,),
        )
        + table(
            ["layer", "kind", "mean", "std"],
            grads,
            f"activation gradients · step {k}",
            (1,),
        )
        + table(
            ["param", "name", "shape", "mean", "std", "grad:data"],
            weights,
            f"weight gradients · step {k}",
            (1,),
        )
    )


def _update_rows(stats: dict, ud: np.ndarray, tail: int) -> list[list]:
    rows = []
    for p in stats["params"]:
        if len(p["shape"]) != 2:
            continue
        column = ud[-tail:, p["param"]] if len(ud) else np.empty(0)
        finite = column[np.isfinite(column)]
        mean = float(finite.mean()) if len(finite) else None
        rows.append(
            [
                p["param"],
                p["name"],
                shape_text(p["shape"]),
                fmt(p.get("update_to_data"), "+.2f"),
                fmt(mean, "+.2f"),
            ]
        )
    return rows


READING = (
    "<p>How to read them. <b>saturated</b>: percent of a tanh layer's outputs with "
    "|t| &gt; 0.97, where tanh is flat and passes almost no gradient; a few percent "
    "is usual. <b>dead units</b>: units saturated on every example of the batch. "
    "<b>std</b> of the activations should stay roughly level with depth, and so "
    "should the std of their gradients. <b>grad:data</b>: std(grad) / std(weight), "
    "how large a weight's gradient is next to the weight. <b>update:data</b>: "
    "log10(std(lr·grad) / std(weight)), the share of a weight one step changes; "
    "about -3 is healthy. Layers are numbered by their place in the network's flat "
    "list of layers; params by their place among the parameters.</p>\n"
)


def _tables_body(stats: dict, ud: np.ndarray) -> str:
    names = {p["param"]: p["name"] for p in stats["params"]}
    body = READING + "".join(_snapshot_tables(s, names) for s in stats["snapshots"])
    tail = max(1, len(ud) // 10)
    columns = ["param", "name", "shape", "last step", f"mean of last {tail}"]
    return body + table(
        columns,
        _update_rows(stats, ud, tail),
        f"update:data (log10, guide {GUIDE:g}) · {len(ud)} steps",
        (1,),
    )


def _png(run_dir: Path, name: str) -> bytes | None:
    path = run_dir / name
    return path.read_bytes() if path.is_file() else None


def _hist_numbers(records: list[dict], label) -> str:
    """Bin centers and densities of each record's histogram, side by side."""
    cols, data = [], []
    for r in records:
        if r.get("hist") is None:
            continue
        edges = np.asarray(r["hist"]["edges"])
        cols += [f"{label(r)} center", f"{label(r)} density"]
        data += [(edges[:-1] + edges[1:]) / 2, np.asarray(r["hist"]["density"])]
    if not data:
        return ""
    rows = [[f"{c[i]:.4g}" for c in data] for i in range(len(data[0]))]
    return numbers(cols, rows, "numbers behind this picture (histograms)")


def _snapshot_images(run_dir: Path, snap: dict, maps: dict) -> str:
    k, out = snap["step"], []
    layer = lambda r: f"layer {r['layer']}"  # noqa: E731
    param = lambda r: f"param {r['param']}"  # noqa: E731
    out.append(
        image(
            f"activation distribution · step {k}",
            _png(run_dir, f"act_hist_step{k}.png"),
            "Density of each watched layer's output. Mass piled at -1 and +1 means "
            "saturated tanh units; a narrow spike at 0 means activations collapsed.",
            _hist_numbers(snap["activations"], layer),
        )
    )
    out.append(
        image(
            f"activation gradient distribution · step {k}",
            _png(run_dir, f"grad_hist_step{k}.png"),
            "Density of the gradient of each watched layer's output. Healthy layers "
            "overlap; spreads that differ by layer mean gradients vanish or explode.",
            _hist_numbers(snap["gradients"], layer),
        )
    )
    out.append(
        image(
            f"weight gradient distribution · step {k}",
            _png(run_dir, f"weight_grad_hist_step{k}.png"),
            "Density of each 2-D weight's gradient; the legend gives its grad:data ratio.",
            _hist_numbers(snap["weights"], param),
        )
    )
    for a in snap["activations"]:
        if (k, a["layer"]) in maps:
            out.append(_saturation_image(run_dir, k, a, maps[(k, a["layer"])]))
    return "".join(out)


def _saturation_image(run_dir: Path, step: int, act: dict, sat: np.ndarray) -> str:
    per_unit = sat.sum(axis=0)
    dead = [int(u) for u in np.flatnonzero(sat.all(axis=0))]
    rows = [[u, int(n), f"{100 * n / len(sat):.0f}%"] for u, n in enumerate(per_unit)]
    data = numbers(
        ["unit", "examples saturated", "share of batch"],
        rows,
        f"numbers behind this picture (dead units: {dead or 'none'})",
    )
    return image(
        f"saturation map · layer {act['layer']} ({act['kind']}) · step {step}",
        _png(run_dir, artifacts.saturation_png(step, act["layer"])),
        "Rows are the examples of the batch, columns the units; white where the "
        "unit saturates on that example. A white column is a dead unit: saturated "
        "on every example, it passes no gradient.",
        data,
    )


def _series_images(run_dir: Path, stats: dict, series: dict) -> str:
    loss, ud = series.get("loss", np.empty(0)), series.get("update_to_data")
    if not len(loss):
        return "<p>No step finished, so there is no series to show.</p>\n"
    rows = [[i + 1, f"{loss[i]:.4f}"] for i in _every(len(loss))]
    note = "" if len(loss) <= MAX_ROWS else f" at {len(rows)} evenly spaced steps"
    caption = "Cross-entropy of each training batch" + (
        "; the dark line is a running mean." if len(loss) >= 200 else "."
    )
    out = image(
        "training loss",
        _png(run_dir, "loss.png"),
        caption,
        numbers(["step", "loss"], rows, f"numbers behind this picture{note}"),
    )
    weights = [p for p in stats["params"] if len(p["shape"]) == 2]
    columns = ["step"] + [
        f"param {p['param']} {shape_text(p['shape'])}" for p in weights
    ]
    rows = [
        [i + 1] + [fmt(_finite(ud[i, p["param"]]), "+.3f") for p in weights]
        for i in _every(len(ud))
    ]
    return out + image(
        "update:data ratio over training",
        _png(run_dir, "update_to_data.png"),
        "log10(std(lr·grad) / std(weight)) of each 2-D weight at every step. About "
        "-3 (dashed line) is healthy; well below learns slowly, well above too fast.",
        numbers(columns, rows, f"numbers behind this picture (log10){note}"),
    )


def _finite(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def run_report(run_dir: Path) -> str:
    """The HTML page of one run directory, built from its files alone."""
    stats = artifacts.read_stats(run_dir)
    series = artifacts.read_series(run_dir)
    maps = artifacts.read_saturation_maps(run_dir)
    if "findings" not in stats:
        stats = {**stats, **findings.findings_record(stats, series)}
    ud = series.get("update_to_data", np.empty((0, 0)))
    pictures = "".join(_snapshot_images(run_dir, s, maps) for s in stats["snapshots"])
    sections = [
        ("findings", "Findings", findings_list(stats["findings"])),
        ("config", "Config", _config_body(stats)),
        ("tables", "Tables", _tables_body(stats, ud)),
        ("training", "Loss and update:data", _series_images(run_dir, stats, series)),
        ("snapshots", "Distributions and saturation", pictures),
    ]
    return page(
        f"actdiag run · {stats.get('name', run_dir.name)}", _summary(stats), sections
    )


def write_run_report(run_dir: Path) -> Path:
    """(Re)build report.html in `run_dir`, atomically; touches no other file."""
    text = run_report(run_dir)
    path = run_dir / artifacts.REPORT
    artifacts.write_bytes_atomic(path, text.encode("utf-8"))
    return path


# ---------------------------------------------------------------------------
# the sweep page: its points side by side, from sweep.json and their run directories

SWEEP_FILE = artifacts.SWEEP
COMPARE_FILE = artifacts.COMPARE
SWEEP_FIGURES = (
    ("sweep_depth.png", "statistics against depth"),
    ("sweep_act_hist.png", "activation distribution per point"),
    ("sweep_grad_hist.png", "activation gradient distribution per point"),
    ("sweep_update_to_data.png", "update:data over training per point"),
    ("sweep_loss.png", "training loss per point"),
)


def read_record(folder: Path, name: str, what: str) -> dict:
    """Load the JSON record `name` of a comparison folder, naming the path.

    Sweep folders are read by `sweep.read_sweep`.
    """
    path = folder / name
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ActdiagError(
            f"{path}: unreadable or corrupt {what} file ({err})"
        ) from None
    if not isinstance(record, dict) or record.get("schema", 1) != 1:
        raise ActdiagError(f"{path}: not a {what} file this actdiag reads (schema)")
    return record


def _point_run(sweep_dir: Path, point: dict) -> dict | None:
    """A point's stats and series read from its run directory, or None."""
    if not isinstance(point.get("run_dir"), str):
        return None
    run_dir = sweep_dir / point["run_dir"]
    try:
        stats = artifacts.read_stats(run_dir)
        series = artifacts.read_series(run_dir)
    except ActdiagError:
        return None
    if "findings" not in stats:
        stats = {**stats, **findings.findings_record(stats, series)}
    return {"stats": stats, "series": series}


def _report_link(sweep_dir: Path, point: dict) -> Cell | str:
    """A relative link to a point's own report.html, when it exists."""
    run_dir = point.get("run_dir")
    if (
        not isinstance(run_dir, str)
        or not (sweep_dir / run_dir / artifacts.REPORT).is_file()
    ):
        return "no report"
    href = quote(f"{run_dir}/{artifacts.REPORT}", safe="/=,+")
    return Cell(
        f'<a href="{esc(href)}">{esc(run_dir)}/{artifacts.REPORT}</a>', markup=True
    )


def _status(status: str) -> Cell:
    return Cell(status, "status-ok" if status == "ok" else "status-bad")


def _counts(run: dict | None) -> str:
    if run is None:
        return "n/a"
    items = run["stats"].get("findings", [])
    return " / ".join(
        str(sum(f["severity"] == s for f in items)) for s in findings.SEVERITIES
    )


def _sweep_points_body(sweep_dir: Path, record: dict, runs: list) -> str:
    keys = record.get("keys", [])
    swept = "; ".join(
        f"<b>{esc(k)}</b> over "
        + ", ".join(
            esc(p["labels"].get(k, "?")) for p in _distinct(record["points"], k)
        )
        for k in keys
    )
    given = [f"config {record['config']}" if record.get("config") else "the defaults"]
    given += [f"--set {s}" for s in record.get("set") or []]
    if record.get("steps") is not None:
        given.append(f"--steps {record['steps']}")
    intro = (
        f"<p>Swept: {swept}. Every other key as in {esc(', '.join(given))}. "
        f"{len(record['points'])} points, {record.get('jobs', '?')} at once."
        "</p>\n"
    )
    columns = [
        "#",
        "point",
        *keys,
        "status",
        "steps",
        "seconds",
        "findings bad / warn / info",
        "report",
        "error",
    ]
    rows = [
        [
            p["point"],
            p["label"],
            *(p["labels"].get(k, "") for k in keys),
            _status(p["status"]),
            _num(p.get("steps")),
            fmt(p.get("seconds"), ".1f"),
            _counts(run),
            _report_link(sweep_dir, p),
            p.get("error") or "",
        ]
        for p, run in zip(record["points"], runs, strict=True)
    ]
    text = (1, *range(2, 3 + len(keys)), len(columns) - 2, len(columns) - 1)
    return intro + table(columns, rows, "", text)


def _distinct(points: list[dict], key: str) -> list[dict]:
    """The first point of each distinct label of `key`, in order."""
    seen, out = set(), []
    for p in points:
        label = p["labels"].get(key)
        if label not in seen:
            seen.add(label)
            out.append(p)
    return out


def _at(points: list[dict]) -> str:
    steps = sorted({p["at_step"] for p in points if p.get("at_step") is not None})
    return f"step {steps[0]}" if len(steps) == 1 else "first snapshot of each point"


def _layer_table(
    points: list[dict],
    key: str,
    spec: str,
    title: str,
    limits: list[float | None] | None = None,
    caption: str = "",
) -> str:
    """A row per watched layer, a column per point; red past the point's limit."""
    layers = sorted({(r["layer"], r["kind"]) for p in points for r in p["layers"]})
    by_layer = [{r["layer"]: r for r in p["layers"]} for p in points]
    limits = limits or [None] * len(points)

    def cell(rows: dict, layer: int, limit: float | None) -> Cell | str:
        if layer not in rows:
            return "-"
        value = rows[layer].get(key)
        past = value is not None and limit is not None and value > limit
        return Cell(fmt(value, spec), "unhealthy" if past else "")

    rows = [
        [
            layer,
            kind,
            *(cell(b, layer, m) for b, m in zip(by_layer, limits, strict=True)),
        ]
        for layer, kind in layers
    ]
    return table(
        ["layer", "kind", *(p["label"] for p in points)], rows, title, (1,), caption
    )


def _saturation_limits(runs: list) -> list[float | None]:
    """Each point's saturation_threshold, from its stats.json when it was read."""
    limits = []
    for run in runs:
        stats = {} if run is None else run["stats"]
        thresholds = stats.get("thresholds") or (
            findings.thresholds_from(stats["config"]) if stats else {}
        )
        limits.append(thresholds.get("saturation_threshold"))
    return limits


def _sweep_tables_body(record: dict, runs: list) -> str:
    points, at = record["points"], _at(record["points"])
    body = READING
    if any(p["layers"] for p in points):
        limits = _saturation_limits(runs)
        shown = sorted({m for m in limits if m is not None})
        red = (
            (
                "Red: above the point's saturation_threshold ("
                + ", ".join(f"{m:g}" for m in shown)
                + " %)."
            )
            if shown
            else ""
        )
        body += _layer_table(points, "act_std", ".2f", f"activation std · {at}")
        body += _layer_table(
            points,
            "saturated",
            ".2f",
            f"saturated (% with |t| > 0.97) · {at}",
            limits,
            red,
        )
        body += _layer_table(
            points, "grad_std", ".2e", f"activation gradient std · {at}"
        )
    rows = []
    for p in points:
        top = p.get("grad_to_data_max") or {}
        rows.append(
            [
                p["label"],
                _status(p["status"]),
                _num(p.get("steps")),
                _loss(p.get("loss")),
                _loss(p.get("val_loss")),
                fmt(top.get("value"), ".2e"),
                _num(top.get("param")),
                shape_text(top["shape"]) if top else "n/a",
            ]
        )
    body += table(
        [
            "point",
            "status",
            "steps",
            "final loss",
            "val loss",
            "largest grad:data",
            "param",
            "shape",
        ],
        rows,
        f"per point · loss at the last step, grad:data at {at}",
        (0, 1),
    )
    shapes = {u["param"]: u["shape"] for p in points for u in p["update_to_data"]}
    values = [{u["param"]: u["value"] for u in p["update_to_data"]} for p in points]
    rows = [
        [param, shape_text(shapes[param]), *(fmt(v.get(param), "+.2f") for v in values)]
        for param in sorted(shapes)
    ]
    if rows:
        body += table(
            ["param", "shape", *(p["label"] for p in points)],
            rows,
            f"update:data at the last step (log10, guide {GUIDE:g})",
        )
    return body


def _loss(value: float | None) -> str:
    """A loss with four decimals, or in e-notation when it has blown up."""
    return fmt(value, ".4f" if value is None or abs(value) < 1e4 else ".3e")


def _folded(label: str, parts: list[str]) -> str:
    """Several tables folded under one summary line."""
    if not parts:
        return ""
    return f"<details><summary>{esc(label)}</summary>\n{''.join(parts)}</details>\n"


def _sweep_numbers(name: str, record: dict, runs: list) -> str:
    """The numbers behind one sweep figure, read from the same records."""
    points = record["points"]
    label = "numbers behind this picture"
    if name == "sweep_depth.png":
        rows = [
            [
                p["label"],
                r["layer"],
                r["kind"],
                fmt(r["act_std"], ".4f"),
                fmt(r["saturated"], ".2f"),
                fmt(r["grad_std"], ".3e"),
            ]
            for p in points
            for r in p["layers"]
        ]
        return numbers(
            ["point", "layer", "kind", "act std", "saturated %", "grad std"],
            rows,
            label,
            (0, 2),
        )
    if name in ("sweep_act_hist.png", "sweep_grad_hist.png"):
        part = "activations" if name == "sweep_act_hist.png" else "gradients"
        parts = []
        for p, run in zip(points, runs, strict=True):
            snap = _snapshot(run, p.get("at_step"))
            if snap is not None:
                parts.append(f"<h3>{esc(p['label'])}</h3>\n" + _hist_table(snap[part]))
        return _folded(f"{label} (histograms, per point)", parts)
    if name == "sweep_update_to_data.png":
        parts = []
        for p, run in zip(points, runs, strict=True):
            if run is None:
                continue
            ud = run["series"].get("update_to_data", np.empty((0, 0)))
            weights = [w for w in run["stats"]["params"] if len(w["shape"]) == 2]
            columns = ["step"] + [
                f"param {w['param']} {shape_text(w['shape'])}" for w in weights
            ]
            rows = [
                [i + 1] + [fmt(_finite(ud[i, w["param"]]), "+.3f") for w in weights]
                for i in _every(len(ud))
            ]
            parts.append(f"<h3>{esc(p['label'])}</h3>\n" + table(columns, rows))
        return _folded(f"{label} (log10, per point)", parts)
    losses = [
        np.empty(0) if run is None else run["series"].get("loss", np.empty(0))
        for run in runs
    ]
    n = max((len(x) for x in losses), default=0)
    rows = [
        [i + 1, *(_loss(float(x[i])) if i < len(x) else "" for x in losses)]
        for i in _every(n)
    ]
    return numbers(
        ["step", *(p["label"] for p in points)],
        rows,
        f"{label} (loss of each batch, before the running mean)",
    )


def _snapshot(run: dict | None, step: int | None) -> dict | None:
    if run is None or step is None:
        return None
    return next((s for s in run["stats"]["snapshots"] if s["step"] == step), None)


def _hist_table(records: list[dict]) -> str:
    """Bin centers and densities of each layer's histogram, side by side."""
    cols, data = [], []
    for r in records:
        if r.get("hist") is None:
            continue
        edges = np.asarray(r["hist"]["edges"])
        cols += [f"layer {r['layer']} center", f"layer {r['layer']} density"]
        data += [(edges[:-1] + edges[1:]) / 2, np.asarray(r["hist"]["density"])]
    if not data:
        return "<p>No histogram recorded.</p>\n"
    return table(cols, [[f"{c[i]:.4g}" for c in data] for i in range(len(data[0]))])


SWEEP_CAPTIONS = {
    "sweep_depth.png": "Activation std, saturated percent and activation gradient "
    "std against layer, a line per point. Healthy: std level with depth, "
    "saturation a few percent.",
    "sweep_act_hist.png": "Density of each watched layer's output, a panel per "
    "point on shared axes. Mass at -1 and +1 is saturation; a spike at 0 is "
    "collapse.",
    "sweep_grad_hist.png": "Density of the gradient of each watched layer's output "
    "(log scale), a panel per point. Layers should overlap within a panel.",
    "sweep_update_to_data.png": "log10 update:data of each 2-D weight at every step, "
    "a panel per point; about -3 (dashed line) is healthy.",
    "sweep_loss.png": "Training loss of every point (running mean over about 1 % "
    "of the steps).",
}


def _sweep_figures_body(sweep_dir: Path, record: dict, runs: list) -> str:
    return "".join(
        image(
            title,
            _png(sweep_dir, name),
            SWEEP_CAPTIONS[name],
            _sweep_numbers(name, record, runs),
        )
        for name, title in SWEEP_FIGURES
    )


def _sweep_findings_body(sweep_dir: Path, record: dict, runs: list) -> str:
    out = []
    for p, run in zip(record["points"], runs, strict=True):
        link = _report_link(sweep_dir, p)
        link = link.text if isinstance(link, Cell) else esc(link)
        out.append(
            f'<h3 class="point" id="point-{p["point"]}">{esc(p["label"])} · '
            f"{esc(p['status'])} · {link}</h3>\n"
        )
        if run is None:
            error = p.get("error") or "its run directory could not be read"
            out.append(f'<p class="missing">No findings: {esc(error)}.</p>\n')
        else:
            out.append(findings_list(run["stats"].get("findings", [])))
    return "".join(out)


def sweep_report(sweep_dir: Path) -> str:
    """The HTML page of a sweep directory, built from its files alone."""
    from actdiag.sweep import read_sweep

    record = read_sweep(sweep_dir)
    if not isinstance(record.get("points"), list):
        raise ActdiagError(f"{sweep_dir / SWEEP_FILE}: corrupt sweep file (no points)")
    runs = [_point_run(sweep_dir, p) for p in record["points"]]
    ok = sum(p["status"] == "ok" for p in record["points"])
    subtitle = (
        f"{len(record['points'])} points ({ok} ok) · swept "
        f"{', '.join(record.get('keys', []))} · "
        f"{record.get('seconds', 0):.1f} s · {sweep_dir.name}"
    )
    sections = [
        ("points", "Points", _sweep_points_body(sweep_dir, record, runs)),
        ("tables", "Tables", _sweep_tables_body(record, runs)),
        ("figures", "Figures", _sweep_figures_body(sweep_dir, record, runs)),
        (
            "findings",
            "Findings by point",
            _sweep_findings_body(sweep_dir, record, runs),
        ),
    ]
    return page(
        f"actdiag sweep · {record.get('name', sweep_dir.name)}", subtitle, sections
    )


# ---------------------------------------------------------------------------
# the comparison page, from compare.json and the overlay pictures alone

COMPARE_FIGURES = (
    ("compare_act_hist.png", "act", "activation distribution, by run"),
    ("compare_grad_hist.png", "grad", "activation gradient distribution, by run"),
    ("compare_weight_hist.png", "weight", "weight gradient distribution, by run"),
    ("compare_act_depth.png", "act", "activation std and saturation by depth"),
    (
        "compare_update_to_data.png",
        "update_to_data",
        "update:data over training, by run",
    ),
)
FAMILY_TITLES = {
    "act": "activations",
    "grad": "activation gradients",
    "weight": "weight gradients",
    "update_to_data": "update:data (log10)",
}
FAMILY_STATS = {
    "act": ["std", "saturated"],
    "grad": ["std"],
    "weight": ["std", "grad_to_data"],
    "update_to_data": ["update_to_data"],
}
STAT_NAMES = {
    "mean": "mean",
    "std": "std",
    "saturated": "saturated %",
    "grad_to_data": "grad:data",
    "update_to_data": "update:data",
}
STAT_FORMATS = {
    ("act", "std"): ".2f",
    ("act", "saturated"): ".2f",
    ("update_to_data", "update_to_data"): "+.2f",
}


def _runs_body(record: dict) -> str:
    columns = [
        "run",
        "folder",
        "steps run",
        "compared step",
        "loss at that step",
        "final loss",
        "val loss",
        "median grad:data",
    ]
    rows = [
        [
            r["label"],
            r["path"],
            _num(r.get("steps")),
            _num(r.get("step")),
            fmt(r.get("step_loss"), ".4f"),
            fmt(r.get("loss"), ".4f"),
            fmt(r.get("val_loss"), ".4f"),
            fmt(r.get("grad_to_data_median"), ".2e"),
        ]
        for r in record["runs"]
    ]
    return (
        "<p>The first run is the baseline every change is measured against.</p>\n"
        + table(columns, rows, "", (0, 1))
    )


def _config_diff_body(record: dict) -> str:
    runs = record["runs"]
    rows = [
        [key, *(show_value(v) for v in values)]
        for key, values in record.get("config_diff", {}).items()
    ]
    if not rows:
        rows = [["(none)", *("identical" for _ in runs)]]
    return table(
        ["key", *(r["label"] for r in runs)],
        rows,
        "config keys that differ (every other key is the same)",
        (0,),
    )


def _stat_cell(cell: dict, spec: str, i: int) -> Cell | str:
    """One run's value, its change against the first run and its health marks."""
    value = cell["values"][i]
    if value is None:
        return "-"
    text = format(value, spec)
    if i > 0 and cell["changes"][i] is not None:
        text += " " + change_text(cell["changes"][i], cell["change"])
    classes = []
    if cell["crossed"][i]:
        text += " !" if cell["unhealthy"][i] else " ok"
        classes.append("crossed")
    if cell["unhealthy"][i]:
        classes.append("unhealthy")
    return Cell(text, " ".join(classes))


def _row_name(row: dict) -> str:
    names = row["names"]
    if len(set(names)) == 1:
        return names[0] or "-"
    return " | ".join("-" if n is None else n for n in names)


def _family_caption(record: dict, family: str) -> str:
    t = record["thresholds"]
    first = record["runs"][0]["label"]
    text = f"Against {first}: ×ratio for spreads, +difference otherwise."
    marks = (
        " Shaded, ending in !: past the threshold now but not in the first run;"
        " shaded, ending in ok: back within it."
    )
    if family == "act":
        text += f" Red: saturated above {t['saturated_max']:g} %." + marks
    if family == "weight":
        text += (
            f" Red: grad:data above {t['grad_to_data_outlier']:g}x the run's "
            "median." + marks
        )
    if family == "update_to_data":
        low, high = t["update_to_data_band"]
        text += (
            f" Mean of the last {t['update_to_data_window']:.0%} of steps. "
            f"Red: outside [{low:g}, {high:g}]." + marks
        )
    return text


def _family_table(record: dict, family: str) -> str:
    runs, stats = record["runs"], FAMILY_STATS[family]
    steps = " / ".join(str(s) for s in sorted({r["step"] for r in runs}))
    where = ("up to step " if family == "update_to_data" else "step ") + steps
    rows = []
    for row in record["families"].get(family, []):
        for j, stat in enumerate(stats):
            head = [row["row"], _row_name(row)] if j == 0 else ["", ""]
            spec = STAT_FORMATS.get((family, stat), ".2e")
            cells = [_stat_cell(row["stats"][stat], spec, i) for i in range(len(runs))]
            rows.append(head + ([STAT_NAMES[stat]] if len(stats) > 1 else []) + cells)
    columns = ["#", "layer" if family in ("act", "grad") else "weight"]
    columns += ["stat"] if len(stats) > 1 else []
    text = (1, 2) if len(stats) > 1 else (1,)
    return table(
        columns + [r["label"] for r in runs],
        rows,
        f"{FAMILY_TITLES[family]} · {where}",
        text,
        _family_caption(record, family),
    )


def _compare_tables_body(record: dict) -> str:
    differ = any(
        len(set(row["names"])) > 1
        for rows in record["families"].values()
        for row in rows
    )
    note = (
        " Layer indices or shapes differ between runs: the layer column names "
        "each run's own, in run order."
        if differ
        else ""
    )
    alignment = record.get("alignment", "")
    intro = (
        f"<p><b>Alignment:</b> {esc(alignment[:1].upper() + alignment[1:])}."
        f"{esc(note)}</p>\n" + READING
    )
    return intro + "".join(
        _family_table(record, f) for f in FAMILY_TITLES if f in record["families"]
    )


def _compare_numbers(name: str, family: str, record: dict) -> str:
    """The summary numbers behind one overlay picture, from compare.json."""
    runs = record["runs"]
    stats = {"compare_act_depth.png": ["std", "saturated"]}.get(
        name, ["mean"] * (family != "update_to_data") + FAMILY_STATS[family]
    )
    rows = []
    for row in record["families"].get(family, []):
        for stat in stats:
            values = row["stats"][stat]["values"]
            rows.append(
                [
                    row["row"],
                    _row_name(row),
                    STAT_NAMES[stat],
                    *(fmt(v, ".4g") for v in values),
                ]
            )
    where = {
        "act": "histograms",
        "grad": "histograms",
        "weight": "histograms",
        "update_to_data": "series",
    }[family]
    source = "stats.json" if where == "histograms" else "series.npz"
    label = (
        f"numbers behind this picture (the summary of each row; the full "
        f"{where} are in each run's {source})"
    )
    if name == "compare_act_depth.png":
        label = "numbers behind this picture"
    return numbers(
        ["#", "layer or weight", "stat", *(r["label"] for r in runs)],
        rows,
        label,
        (1, 2),
    )


COMPARE_CAPTIONS = {
    "compare_act_hist.png": "Each aligned watched layer's output density, every run "
    "overlaid in its own color.",
    "compare_grad_hist.png": "The density of each aligned layer's activation "
    "gradient, every run overlaid.",
    "compare_weight_hist.png": "The density of each aligned 2-D weight's gradient, "
    "every run overlaid; the legend gives grad:data.",
    "compare_act_depth.png": "Activation std and percent saturated against depth, a "
    "line per run; the dashed line is the saturation threshold.",
    "compare_update_to_data.png": "log10 update:data of each aligned weight over the "
    "steps, a color per run; the shaded band is the healthy range.",
}


def compare_report(folder: Path) -> str:
    """The HTML page of a comparison folder, built from its files alone."""
    record = read_record(folder, COMPARE_FILE, "comparison")
    for key in ("runs", "families", "thresholds"):
        if key not in record:
            raise ActdiagError(
                f"{folder / COMPARE_FILE}: corrupt comparison file (no {key})"
            )
    figures = "".join(
        image(
            title,
            _png(folder, name),
            COMPARE_CAPTIONS[name],
            _compare_numbers(name, family, record),
        )
        for name, family, title in COMPARE_FIGURES
    )
    sections = [
        ("runs", "Runs", _runs_body(record)),
        ("config", "Config difference", _config_diff_body(record)),
        ("tables", "Tables", _compare_tables_body(record)),
        ("figures", "Figures", figures),
    ]
    labels = [r["label"] for r in record["runs"]]
    steps = " / ".join(str(s) for s in sorted({r["step"] for r in record["runs"]}))
    subtitle = f"{len(labels)} runs · compared at step {steps} · {folder.name}"
    return page(f"actdiag compare · {' vs '.join(labels)}", subtitle, sections)


# ---------------------------------------------------------------------------
# writing any page


def write_sweep_report(sweep_dir: Path) -> Path:
    """(Re)build report.html in a sweep directory, atomically."""
    return _write(sweep_dir, sweep_report(sweep_dir))


def write_compare_report(folder: Path) -> Path:
    """(Re)build report.html in a comparison folder, atomically."""
    return _write(folder, compare_report(folder))


def write_report(path: Path) -> Path:
    """(Re)build the report.html of a run, sweep or comparison folder.

    Raises ActdiagError naming `path` when it is none of the three.
    """
    if not path.exists():
        raise ActdiagError(f"{path}: no such file or directory")
    if path.is_dir() and (path / SWEEP_FILE).is_file():
        return write_sweep_report(path)
    if path.is_dir() and (path / COMPARE_FILE).is_file():
        return write_compare_report(path)
    if path.is_dir() and not (path / artifacts.STATS).exists():
        raise ActdiagError(
            f"{path}: not a run, sweep or comparison folder (no {artifacts.STATS}, "
            f"{SWEEP_FILE} or {COMPARE_FILE} inside)"
        )
    return write_run_report(path)


def _write(folder: Path, text: str) -> Path:
    path = folder / artifacts.REPORT
    artifacts.write_bytes_atomic(path, text.encode("utf-8"))
    return path
