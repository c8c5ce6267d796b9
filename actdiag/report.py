"""Self-contained HTML pages: styles and pictures inside the file, nothing fetched.

A page is assembled from generic sections (title, findings, tables, images with
the numbers behind them) so any command can build one; `run_report` assembles
the page of one run directory from its files alone. Reads records, never a model;
draws nothing (the PNGs come from plots.py).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np

from actdiag import artifacts, findings
from actdiag.artifacts import GUIDE

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
"""


# ---------------------------------------------------------------------------
# generic sections: each returns an HTML fragment


def esc(value) -> str:
    """HTML-escape any value as text."""
    return html.escape(str(value))


def section(title: str, body: str, anchor: str) -> str:
    """A titled part of the page that the navigation links to."""
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>\n{body}</section>\n'


def table(columns: list[str], rows: list[list], title: str = "",
          text_columns: tuple[int, ...] = ()) -> str:
    """A plain table; `text_columns` are left-aligned, the rest are numbers."""
    def cell(tag: str, i: int, value) -> str:
        cls = ' class="text"' if i in text_columns else ""
        return f"<{tag}{cls}>{esc(value)}</{tag}>"

    head = "".join(cell("th", i, c) for i, c in enumerate(columns))
    body = "\n".join(
        "<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>"
        for row in rows
    )
    caption = f"<h3>{esc(title)}</h3>\n" if title else ""
    return f"{caption}<table><tr>{head}</tr>\n{body}</table>\n"


def numbers(columns: list[str], rows: list[list], label: str) -> str:
    """A folded table holding the numbers behind a picture."""
    return (f"<details><summary>{esc(label)}</summary>\n"
            f"{table(columns, rows)}</details>\n")


def image(title: str, png: bytes | None, caption: str, data: str = "") -> str:
    """A picture embedded as base64 PNG, its caption and the numbers behind it."""
    if png is None:
        img = '<p class="missing">picture not drawn in this run directory</p>'
    else:
        src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        img = f'<img alt="{esc(title)}" src="{src}">'
    return (f"<figure><h3>{esc(title)}</h3>{img}\n"
            f"<figcaption>{esc(caption)}</figcaption>\n{data}</figure>\n")


def findings_list(items: list[dict]) -> str:
    """Findings as coloured cards; findings sharing severity, rule and advice share one.

    Each card gives the severity, every message with its value and threshold, and
    what to try once.
    """
    groups: list[list[dict]] = []
    for f in items:
        key = (f["severity"], f["rule"], f["advice"])
        if groups and (groups[-1][0]["severity"], groups[-1][0]["rule"],
                       groups[-1][0]["advice"]) == key:
            groups[-1].append(f)
        else:
            groups.append([f])
    counts = {s: sum(f["severity"] == s for f in items) for s in findings.SEVERITIES}
    head = (f"<p>{len(items)} findings: {counts['bad']} bad, {counts['warn']} warn, "
            f"{counts['info']} info. Each names the rule, the measured value and the "
            "threshold it crossed (set in the config), and what to try.</p>\n")
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
    return (f'<div class="finding {esc(first["severity"])}">'
            f'<span class="badge">{esc(first["severity"])}</span>'
            f'<span class="rule">rule {esc(first["rule"])}</span>'
            f'<ul>{"".join(lines)}</ul>'
            f'<div class="advice"><b>Try:</b> {esc(first["advice"])}</div></div>')


def page(title: str, subtitle: str, sections: list[tuple[str, str, str]]) -> str:
    """A whole HTML document from (anchor, title, body) sections, with navigation."""
    nav = " ".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t, _ in sections)
    body = "".join(section(t, b, a) for a, t, b in sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style></head>\n"
        f"<body><main><h1>{esc(title)}</h1>\n<p class=\"meta\">{esc(subtitle)}</p>\n"
        f"<nav>{nav}</nav>\n{body}</main></body></html>\n"
    )


def _num(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"


def _fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _shape(shape: list[int]) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ")"


def _every(n: int) -> np.ndarray:
    """Indices of at most MAX_ROWS evenly spaced rows of n, the last included."""
    if n <= MAX_ROWS:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, MAX_ROWS).round().astype(int))


# ---------------------------------------------------------------------------
# the run page


def _summary(stats: dict) -> str:
    loss = _fmt(stats.get("loss"), ".4f")
    val = _fmt(stats.get("val_loss"), ".4f")
    data = stats.get("data", {})
    steps = f"{stats['steps']} step" + ("" if stats["steps"] == 1 else "s")
    return (f"{steps} · final loss {loss} · val loss {val} · "
            f"{stats.get('n_params', '?')} parameters · data {data.get('path', '?')} "
            f"(vocab {data.get('vocab_size', '?')}) · device {stats.get('device', '?')}"
            f" · {stats.get('seconds', 0):.1f} s")


def _pairs(items: list[tuple[str, object]], per_row: int = 4) -> list[list]:
    """key, value pairs laid out `per_row` to a table row."""
    flat = [x for key, value in items for x in (key, _num(value) if isinstance(
        value, float) else value)]
    width = 2 * per_row
    rows = [flat[i:i + width] for i in range(0, len(flat), width)]
    return [row + [""] * (width - len(row)) for row in rows]


def _config_body(stats: dict) -> str:
    thresholds = stats.get("thresholds") or findings.thresholds_from(stats["config"])
    keys = [(k, "shipped names file" if k == "data" and v is None else v)
            for k, v in stats["config"].items() if k not in thresholds]
    columns = ["key", "value"] * 4
    text = tuple(range(8))
    return (table(columns, _pairs(keys), "resolved config", text)
            + table(columns, _pairs(list(thresholds.items())),
                    "thresholds the findings used (config keys)", text))


def _snapshot_tables(snap: dict, names: dict[int, str]) -> str:
    k = snap["step"]
    acts = [[a["layer"], a["kind"], _fmt(a["mean"], "+.2f"), _fmt(a["std"], ".2f"),
             "n/a" if a.get("saturated") is None else f"{a['saturated']:.2f}%",
             _num(a.get("dead_units"))] for a in snap["activations"]]
    grads = [[g["layer"], g["kind"], _fmt(g["mean"], "+f"), _fmt(g["std"], "e")]
             for g in snap["gradients"]]
    weights = [[w["param"], names.get(w["param"], ""), _shape(w["shape"]),
                _fmt(w["mean"], "+f"),
                _fmt(w["std"], "e"), _fmt(w["grad_to_data"], "e")]
               for w in snap["weights"]]
    return (
        table(["layer", "kind", "mean", "std", "saturated", "dead units"], acts,
              f"activations · step {k} (loss {_fmt(snap.get('loss'), '.4f')})", (1,))
        + table(["layer", "kind", "mean", "std"], grads,
                f"activation gradients · step {k}", (1,))
        + table(["param", "name", "shape", "mean", "std", "grad:data"], weights,
                f"weight gradients · step {k}", (1,))
    )


def _update_rows(stats: dict, ud: np.ndarray, tail: int) -> list[list]:
    rows = []
    for p in stats["params"]:
        if len(p["shape"]) != 2:
            continue
        column = ud[-tail:, p["param"]] if len(ud) else np.empty(0)
        finite = column[np.isfinite(column)]
        mean = float(finite.mean()) if len(finite) else None
        rows.append([p["param"], p["name"], _shape(p["shape"]),
                     _fmt(p.get("update_to_data"), "+.2f"), _fmt(mean, "+.2f")])
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
    return body + table(columns, _update_rows(stats, ud, tail),
                        f"update:data (log10, guide {GUIDE:g}) · {len(ud)} steps", (1,))


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
    out.append(image(
        f"activation distribution · step {k}", _png(run_dir, f"act_hist_step{k}.png"),
        "Density of each watched layer's output. Mass piled at -1 and +1 means "
        "saturated tanh units; a narrow spike at 0 means activations collapsed.",
        _hist_numbers(snap["activations"], layer)))
    out.append(image(
        f"activation gradient distribution · step {k}",
        _png(run_dir, f"grad_hist_step{k}.png"),
        "Density of the gradient of each watched layer's output. Healthy layers "
        "overlap; spreads that differ by layer mean gradients vanish or explode.",
        _hist_numbers(snap["gradients"], layer)))
    out.append(image(
        f"weight gradient distribution · step {k}",
        _png(run_dir, f"weight_grad_hist_step{k}.png"),
        "Density of each 2-D weight's gradient; the legend gives its grad:data ratio.",
        _hist_numbers(snap["weights"], param)))
    for a in snap["activations"]:
        if (k, a["layer"]) in maps:
            out.append(_saturation_image(run_dir, k, a, maps[(k, a["layer"])]))
    return "".join(out)


def _saturation_image(run_dir: Path, step: int, act: dict, sat: np.ndarray) -> str:
    per_unit = sat.sum(axis=0)
    dead = [int(u) for u in np.flatnonzero(sat.all(axis=0))]
    rows = [[u, int(n), f"{100 * n / len(sat):.0f}%"] for u, n in enumerate(per_unit)]
    data = numbers(["unit", "examples saturated", "share of batch"], rows,
                   f"numbers behind this picture (dead units: {dead or 'none'})")
    return image(
        f"saturation map · layer {act['layer']} ({act['kind']}) · step {step}",
        _png(run_dir, artifacts.saturation_png(step, act["layer"])),
        "Rows are the examples of the batch, columns the units; white where the "
        "unit saturates on that example. A white column is a dead unit: saturated "
        "on every example, it passes no gradient.", data)


def _series_images(run_dir: Path, stats: dict, series: dict) -> str:
    loss, ud = series.get("loss", np.empty(0)), series.get("update_to_data")
    if not len(loss):
        return "<p>No step finished, so there is no series to show.</p>\n"
    rows = [[i + 1, f"{loss[i]:.4f}"] for i in _every(len(loss))]
    note = "" if len(loss) <= MAX_ROWS else f" at {len(rows)} evenly spaced steps"
    caption = "Cross-entropy of each training batch" + (
        "; the dark line is a running mean." if len(loss) >= 200 else ".")
    out = image("training loss", _png(run_dir, "loss.png"), caption,
                numbers(["step", "loss"], rows, f"numbers behind this picture{note}"))
    weights = [p for p in stats["params"] if len(p["shape"]) == 2]
    columns = ["step"] + [f"param {p['param']} {_shape(p['shape'])}" for p in weights]
    rows = [[i + 1] + [_fmt(_finite(ud[i, p["param"]]), "+.3f") for p in weights]
            for i in _every(len(ud))]
    return out + image(
        "update:data ratio over training", _png(run_dir, "update_to_data.png"),
        "log10(std(lr·grad) / std(weight)) of each 2-D weight at every step. About "
        "-3 (dashed line) is healthy; well below learns slowly, well above too fast.",
        numbers(columns, rows, f"numbers behind this picture (log10){note}"))


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
    return page(f"actdiag run · {stats.get('name', run_dir.name)}", _summary(stats),
                sections)


def write_run_report(run_dir: Path) -> Path:
    """(Re)build report.html in `run_dir`, atomically; touches no other file."""
    text = run_report(run_dir)
    path = run_dir / artifacts.REPORT
    artifacts.write_bytes_atomic(path, text.encode("utf-8"))
    return path
