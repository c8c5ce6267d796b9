"""The `actdiag` command line: parse, call one function, render. Only this imports typer.

Heavy modules (torch, matplotlib) are imported inside the commands so that
`actdiag --help` answers at once.
"""

from __future__ import annotations

import contextlib
import gc
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from actdiag.errors import ActdiagError
from actdiag.text import show_value

app = typer.Typer(
    help="Train the lecture's character MLP and show whether it trains well: "
    "activations, their gradients, weight gradients and update:data ratios.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=False)
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        from actdiag import __version__

        out.print(f"actdiag {__version__}", highlight=False)
        raise typer.Exit()


@app.callback(context_settings={"help_option_names": ["-h", "--help"]})
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Train the lecture's character MLP and show whether it trains well."""


SET_HELP = "Override a config key, e.g. --set lr=0.01 (repeatable; beats the file)."


def fail(message: str, code: int = 2) -> None:
    """Print a one-line error to stderr and exit."""
    err.print(
        f"[bold red]error:[/] {message}", highlight=False, markup=True, soft_wrap=True
    )
    raise typer.Exit(code)


def progress_bar(total: int, quiet: bool):
    """A rich progress bar on stderr with the running loss, or None when hidden."""
    if quiet or not err.is_terminal:
        return None
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("training"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )


# steps under which compile: on rarely pays for its compile time (README, Performance)
COMPILE_PAYS_OFF = 20_000


def config_line(cfg) -> str:
    """One short line with the keys that shape the experiment."""
    keys = (
        "gain",
        "depth",
        "width",
        "tanh",
        "batchnorm",
        "fan_in_scaling",
        "lr",
        "steps",
        "batch_size",
        "device",
        "threads",
        "compile",
    )
    values = cfg.to_dict()
    return " ".join(f"{k}={show_value(values[k])}" for k in keys) + (
        f" data={values['data'] or 'shipped names'}"
    )


def run_name(config: Path | None, overrides: list[str]) -> str:
    """`gain_5_3` for a preset, `gain_5_3_gain=3` when --set changed a knob."""
    name = config.stem if config else "default"
    for text in overrides:
        key, _, value = text.partition("=")
        if key.strip() != "data":
            name += f"_{key.strip()}={value.strip().replace('/', '_')}"
    return name[:80]


@app.command()
def run(
    config: Path | None = typer.Argument(
        None, help="YAML config; omit for the defaults."
    ),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    out_dir: Path | None = typer.Option(
        None, "--out", help="Run directory (must not exist)."
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="No progress bar or config line."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print stats.json instead of tables."
    ),
) -> None:
    """Train one experiment and write its run directory; print the diagnostic tables.

    Config keys: gain, depth, width, embedding, context, tanh, batchnorm,
    fan_in_scaling, last_layer_scale, lr, decay_after, decay_lr, steps, batch_size,
    seed, split_seed, device, threads, compile, data, snapshots, and the findings
    thresholds (README).
    """
    from actdiag.config import load_config
    from actdiag.runner import run_experiment
    from actdiag.tables import findings_text, run_tables

    try:
        cfg = load_config(config, set_)
    except ActdiagError as e:
        fail(str(e))
    name = run_name(config, set_)

    def on_start(run_dir: Path) -> None:
        if not quiet:
            err.print(
                f"config {name}: {config_line(cfg)}", highlight=False, soft_wrap=True
            )
        if cfg.compile and cfg.steps < COMPILE_PAYS_OFF:
            err.print(
                "note: compile is on for a short run: compiling takes about 3 s "
                "(up to 25 s the first time on a machine) and saves 0.2-1.3 ms a "
                f"step, so under about {COMPILE_PAYS_OFF:,} steps the run is "
                "usually faster without it",
                highlight=False,
                soft_wrap=True,
            )

    # train with a live loss readout
    bar = progress_bar(cfg.steps, quiet)
    task = bar.add_task("train", total=cfg.steps, loss="-") if bar else None

    def progress(step: int, loss: float) -> None:
        if bar:
            bar.update(task, completed=step, loss=f"{loss:.4f}")

    try:
        with bar or contextlib.nullcontext():
            result = run_experiment(cfg, name, out_dir, progress, on_start=on_start)
    except ActdiagError as e:
        fail(str(e))
    except KeyboardInterrupt:
        fail("interrupted; files already written are kept", 130)

    # render
    stats = result.stats
    if as_json:
        out.print_json(json.dumps(stats)) if sys.stdout.isatty() else print(
            json.dumps(stats)
        )
    else:
        for table in run_tables(stats, result.series["update_to_data"]):
            out.print(table)
        loss = "n/a" if stats["loss"] is None else f"{stats['loss']:.4f}"
        val = "" if stats["val_loss"] is None else f", val loss {stats['val_loss']:.4f}"
        out.print(f"{stats['steps']} steps, final loss {loss}{val}", highlight=False)
        if stats.get("compile_seconds") is not None:
            out.print(
                f"compiled the forward and backward pass in "
                f"{stats['compile_seconds']:.1f} s (included in the run's "
                f"{stats['seconds']:.1f} s)",
                highlight=False,
            )
        # piped output keeps one finding per line, for grep
        out.print(
            findings_text(stats.get("findings", [])),
            highlight=False,
            soft_wrap=not out.is_terminal,
        )
    if stats["diverged"] is not None:
        err.print(
            f"[bold yellow]diverged:[/] the loss was not finite at step "
            f"{stats['diverged']}; the run stopped there and kept what it recorded "
            "(try a lower lr or gain)",
            soft_wrap=True,
        )
    if stats["interrupted"] is not None:
        err.print(
            f"interrupted at step {stats['interrupted']}; recorded so far is saved",
            soft_wrap=True,
        )
    channel = err if as_json else out
    channel.print(str(result.run_dir), highlight=False, soft_wrap=True)
    if stats["interrupted"] is not None:
        raise typer.Exit(130)


@app.command("compare")
def compare_cmd(
    runs: list[Path] = typer.Argument(
        ..., metavar="RUN", help="Run or sweep directories; 2+ runs in all."
    ),
    step: int | None = typer.Option(
        None,
        "--step",
        help="Compare this snapshot step (every run must hold it); "
        "default: each run's last.",
    ),
    out_dir: Path | None = typer.Option(
        None,
        "--out",
        help="Folder for pictures and compare.json (must not exist); "
        "default: compare-<time> beside the first run.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
    only_changed: bool = typer.Option(
        False,
        "--only-changed",
        help="Print only rows that moved (compare.json keeps all).",
    ),
) -> None:
    """Compare finished runs: config difference, per-layer tables, overlay pictures."""
    from actdiag import compare as cmp
    from actdiag.artifacts import clean
    from actdiag.tables import compare_tables

    try:
        record, folder, _ = cmp.compare_runs(runs, step, out_dir)
    except ActdiagError as e:
        fail(str(e))

    # render
    shown = cmp.only_changed(record) if only_changed else record
    if as_json:
        print(json.dumps(clean(shown)))
    else:
        tables = compare_tables(shown, cmp.TITLES, cmp.TABLE_STATS)
        out.print(tables[0])
        note = (
            " layer indices or shapes differ between runs: the layer column names "
            "each run's own, in run order."
            if cmp.shapes_differ(record)
            else ""
        )
        out.print(f"alignment: {cmp.ALIGNMENT}.{note}", highlight=False)
        for table in tables[1:]:
            out.print(table)
    channel = err if as_json else out
    channel.print(str(folder), highlight=False, soft_wrap=True)


@app.command()
def report(
    run_dir: Path = typer.Argument(
        ..., metavar="DIR", help="A run directory, sweep directory or compare folder."
    ),
) -> None:
    """(Re)build report.html of a run, sweep or comparison from its files alone."""
    from actdiag.report import write_report

    try:
        path = write_report(run_dir)
    except ActdiagError as e:
        fail(str(e))
    out.print(str(path), highlight=False, soft_wrap=True)


class SweepProgress:
    """One display on stderr for a whole sweep: points done, a bar per running point."""

    def __init__(self, plan, quiet: bool):
        self.plan = plan
        self.quiet = quiet
        self.tasks: dict[int, int] = {}
        self.bar = None
        if quiet or not err.is_terminal:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[loss]}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        )
        self.total = self.bar.add_task("points", total=len(plan.points), loss="")

    def event(self, event: tuple) -> None:
        """A worker's progress event: a point started, or reached a step."""
        if not self.bar:
            return
        point = self.plan.points[event[1]]
        if event[0] == "start":
            self.tasks[point.index] = self.bar.add_task(
                f"  {point.label}", total=point.config.steps, loss="loss -"
            )
        elif event[0] == "step" and point.index in self.tasks:
            self.bar.update(
                self.tasks[point.index], completed=event[2], loss=f"loss {event[3]:.4f}"
            )

    def done(self, index: int, status: dict) -> None:
        """A point finished: drop its bar and say on stderr how it ended."""
        if self.bar:
            if index in self.tasks:
                self.bar.remove_task(self.tasks.pop(index))
            self.bar.advance(self.total)
        if self.quiet:
            return
        point = self.plan.points[index]
        tail = "" if status["error"] is None else f": {status['error']}"
        style = "green" if status["status"] == "ok" else "bold red"
        err.print(
            f"point {point.label} [{style}]{status['status']}[/]{tail}", highlight=False
        )


GAINS_HELP = "Gains to compare, e.g. 0.5,1,5/3,3 (the same as --param gain=...)."
PARAM_HELP = "KEY=V1,V2,... to sweep; several --param give every combination."
SWEEP_OUT_HELP = "Sweep directory (must not exist); default runs/sweep-<time>."
JOBS_HELP = "Points trained at once, each in its own process; default: CPU cores."
AT_HELP = "Snapshot step the layer summary shows; default: the first snapshot."


@app.command()
def sweep(
    config: Annotated[
        Path | None, typer.Argument(help="YAML config; omit for the defaults.")
    ] = None,
    gains: Annotated[str | None, typer.Option("--gains", help=GAINS_HELP)] = None,
    params: Annotated[list[str], typer.Option("--param", help=PARAM_HELP)] = [],  # noqa: B006
    set_: Annotated[list[str], typer.Option("--set", help=SET_HELP)] = [],  # noqa: B006
    steps: Annotated[
        int | None, typer.Option("--steps", help="Training steps of every point.")
    ] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help=SWEEP_OUT_HELP)] = None,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", min=1, help=JOBS_HELP)
    ] = None,
    at: Annotated[int | None, typer.Option("--at", help=AT_HELP)] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress display.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print sweep.json instead of tables.")
    ] = False,
) -> None:
    """Train one experiment at several values; compare them in tables and figures.

    Exit code 0 when every point trained, 1 when any failed or diverged, 2 on bad
    input, 130 when interrupted.
    """
    from actdiag.sweep import check_at, job_counts, plan_sweep, run_sweep
    from actdiag.tables import sweep_tables

    try:
        plan = plan_sweep(config, set_, gains, params, steps)
        check_at(plan, at)
    except ActdiagError as e:
        fail(str(e))
    n_jobs, threads = job_counts(jobs, len(plan.points))
    if not quiet:
        err.print(
            f"sweep {plan.name}: {len(plan.points)} points, {n_jobs} at once, "
            f"{threads} thread(s) each",
            highlight=False,
        )
        swept = "; ".join(f"{a.key} over {', '.join(a.labels)}" for a in plan.axes)
        err.print(f"base: {config_line(plan.base)}", highlight=False)
        err.print(f"sweeping {swept}", highlight=False)

    # train every point under one progress display
    display = SweepProgress(plan, quiet)
    try:
        with display.bar or contextlib.nullcontext():
            result = run_sweep(plan, out_dir, jobs, display.event, display.done, at=at)
    except ActdiagError as e:
        fail(str(e))
    except KeyboardInterrupt:
        fail("interrupted again before the sweep was summarised", 130)

    # render, then say what did not finish
    record = result.record
    if as_json:
        print(json.dumps(record))
    else:
        for table in sweep_tables(record):
            out.print(table)
    bad = [p for p in record["points"] if p["status"] != "ok"]
    if bad:
        names = ", ".join(f"{p['label']} ({p['status']})" for p in bad)
        err.print(
            f"[bold yellow]incomplete:[/] {len(bad)} of {len(record['points'])} "
            f"points did not finish: {names}",
            highlight=False,
        )
    channel = err if as_json else out
    channel.print(str(result.sweep_dir), highlight=False, soft_wrap=True)
    if any(p["status"] in ("interrupted", "not run") for p in bad):
        raise typer.Exit(130)
    if bad:
        raise typer.Exit(1)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    finally:
        # NOTE: on the way out Python collects garbage over every object still
        # alive, several times (0.1-0.2 s after a compare, with matplotlib
        # loaded); frozen objects are skipped, and the memory goes back anyway
        gc.freeze()
