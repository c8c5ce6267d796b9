"""Sweeps: one experiment at several values of some config keys, run in parallel.

A sweep directory holds one ordinary run directory per point and `sweep.json`
(schema below), the summary that tables and figures read. Every point's
Config is built and checked before anything runs. Points run in separate
processes; each calls `runner.run_experiment`, so a point's run directory is
the one `actdiag run` writes for the same config. Prints nothing: progress goes
through a callback, problems are raised as ActdiagError or recorded per point.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import multiprocessing
import os
import re
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import Any

from actdiag import __version__, artifacts
from actdiag.config import Config, check_key, load_config, parse_value, validate
from actdiag.errors import ActdiagError

SCHEMA = 1
SUMMARY = artifacts.SWEEP
FIGURES = (
    "sweep_depth.png",  # activation std, saturated, gradient std against layer
    "sweep_act_hist.png",  # activation histograms, a panel per point
    "sweep_grad_hist.png",  # activation gradient histograms, a panel per point
    "sweep_update_to_data.png",  # update:data over the steps, a panel per point
    "sweep_loss.png",  # training loss of every point
)
# keys whose values cannot be listed with commas, or that only change what is recorded
UNSWEEPABLE = {"snapshots": "it changes what is recorded, not the experiment"}

# a progress event from a worker: ("start", point) or ("step", point, step, loss)
Event = tuple
EventFn = Callable[[Event], None]


# ---------------------------------------------------------------------------
# parsing value lists, keeping each value's label as written


@dataclass(frozen=True)
class Axis:
    """One swept key: its values as parsed and the labels they were written with."""

    key: str
    labels: tuple[str, ...]
    values: tuple[Any, ...]
    source: str  # where it was given, e.g. `--gains` or `--param lr`


def parse_axis(text: str, source: str) -> Axis:
    """Parse `KEY=V1,V2,...` into an Axis; values are checked for the key's type.

    Raises ActdiagError for a missing `=`, an unknown key, an empty or
    unparsable value, or a value listed twice (`0.5,1/2` counts as twice).
    """
    key, sep, rest = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ActdiagError(f"{source} '{text}': write KEY=V1,V2,..., e.g. lr=0.01,0.1")
    return parse_values(key, rest, f"{source} {key}")


def parse_values(key: str, text: str, where: str) -> Axis:
    """Parse the comma-separated values of `key`, keeping each label as written.

    `where` names the option in error messages, e.g. `--gains` or `--param lr`.
    """
    check_key(key, where)
    if key in UNSWEEPABLE:
        raise ActdiagError(f"{where}: '{key}' cannot be swept; {UNSWEEPABLE[key]}")
    labels = tuple(part.strip() for part in text.split(","))
    if not text.strip() or any(not label for label in labels):
        raise ActdiagError(f"{where}: empty value in '{text}'; write e.g. {key}=V1,V2")

    # parse each value, then refuse repeats by value rather than by spelling
    values = tuple(parse_value(key, label, where) for label in labels)
    for i, value in enumerate(values):
        for j in range(i):
            if values[j] == value:
                raise ActdiagError(
                    f"{where}: value '{labels[i]}' repeats '{labels[j]}'; "
                    "list each value once"
                )
    return Axis(key, labels, values, where)


def sweep_axes(gains: str | None, params: list[str]) -> list[Axis]:
    """The swept keys of `--gains` and each `--param`, refusing a key given twice."""
    axes = [] if gains is None else [parse_values("gain", gains, "--gains")]
    axes += [parse_axis(text, "--param") for text in params]
    seen: set[str] = set()
    for axis in axes:
        if axis.key in seen:
            raise ActdiagError(
                f"{axis.source}: '{axis.key}' is swept twice; give it once"
            )
        seen.add(axis.key)
    if not axes:
        raise ActdiagError(
            "nothing to sweep; give --gains V1,V2,... or --param KEY=V1,..."
        )
    return axes


# ---------------------------------------------------------------------------
# points: the cartesian product of the axes, each with its own Config


@dataclass(frozen=True)
class Point:
    """One configuration of a sweep."""

    index: int
    labels: tuple[tuple[str, str], ...]  # (key, label as written) per swept key
    config: Config

    @property
    def label(self) -> str:
        """Label for tables and legends, e.g. `gain=5/3 batchnorm=on`."""
        return " ".join(f"{key}={label}" for key, label in self.labels)

    @property
    def dirname(self) -> str:
        """Directory name: the label with `/` and other odd characters as `_`."""
        parts = [f"{key}={label}" for key, label in self.labels]
        return re.sub(r"[^A-Za-z0-9_.,=+-]+", "_", ",".join(parts))


def expand(base: Config, axes: list[Axis]) -> list[Point]:
    """Every combination of the axes' values, first axis slowest, each validated.

    Raises ActdiagError naming `--param KEY` when a value is out of range.
    """
    origin = {axis.key: axis.source for axis in axes}
    indices = itertools.product(*(range(len(axis.values)) for axis in axes))
    points = []
    for index, picks in enumerate(indices):
        chosen = list(zip(axes, picks, strict=True))
        changes = {axis.key: axis.values[i] for axis, i in chosen}
        labels = tuple((axis.key, axis.labels[i]) for axis, i in chosen)
        cfg = validate(dataclasses.replace(base, **changes), origin)
        points.append(Point(index, labels, cfg))
    return points


def unique_dirnames(points: list[Point]) -> list[str]:
    """Each point's directory name, with `-N` appended where two would collide."""
    names: list[str] = []
    for point in points:
        name = point.dirname
        if name in names:
            name = f"{name}-{point.index}"
        names.append(name)
    return names


def check_data(points: list[Point]) -> None:
    """Read each distinct words file once, so a bad one stops the sweep up front."""
    from actdiag.data import DEFAULT_DATA, read_words

    # NOTE: the same choice as runner.data_path, which would import torch here
    for path in sorted({Path(p.config.data or DEFAULT_DATA) for p in points}):
        read_words(path)


@dataclass
class Plan:
    """A checked sweep, ready to run."""

    name: str  # the config file's stem, or `default`
    base: Config  # before the swept values
    axes: list[Axis]
    points: list[Point]
    sources: dict[str, Any]  # how it was asked for: config file, --set, --steps


def plan_sweep(
    config: Path | None,
    sets: list[str],
    gains: str | None,
    params: list[str],
    steps: int | None = None,
) -> Plan:
    """Resolve defaults < file < --set < --steps < swept values into checked points."""
    axes = sweep_axes(gains, params)
    for text in sets:
        key = text.partition("=")[0].strip()
        if key in {axis.key for axis in axes}:
            raise ActdiagError(f"--set {key}: '{key}' is also swept; give it one way")
    if steps is not None and "steps" in {axis.key for axis in axes}:
        raise ActdiagError("--steps: 'steps' is also swept; give it one way")

    # the base config, then every point on top of it
    base = load_config(config, sets)
    if steps is not None:
        base = validate(dataclasses.replace(base, steps=steps), {"steps": "--steps"})
    points = expand(base, axes)
    check_data(points)
    sources = {
        "config": None if config is None else str(config),
        "set": list(sets),
        "steps": steps,
    }
    return Plan(config.stem if config else "default", base, axes, points, sources)


def check_at(plan: Plan, at: int | None) -> None:
    """Raise unless `at` (the step the summary reads) is a snapshot of every point."""
    if at is None:
        return
    for point in plan.points:
        steps = point.config.snapshot_steps()
        if at not in steps:
            shown = ", ".join(str(s) for s in steps)
            raise ActdiagError(
                f"--at {at}: {point.label} records no snapshot there (only at "
                f"{shown}); add one with --set snapshots=[...]"
            )


# ---------------------------------------------------------------------------
# running points in worker processes

_events = None  # the queue a worker sends progress events through
_stop = None  # set by the parent to ask every running point to stop early


def _init_worker(events, stop, threads: int) -> None:
    """Worker start-up: share the queue and stop flag, cap torch's threads.

    Training then uses the point's own `threads` key, so a point computes exactly
    what `actdiag run` computes for the same config.
    """
    import signal

    import torch

    global _events, _stop
    _events, _stop = events, stop
    torch.set_num_threads(threads)
    # NOTE: Ctrl-C reaches the parent, which stops points through `stop` instead
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_point(index: int, cfg: Config, name: str, run_dir: Path) -> dict:
    """Train one point into `run_dir`; return its status, never raise.

    Returns {"status": ok | diverged | interrupted | failed, "error": str | None}.
    """
    from actdiag.runner import run_experiment

    def progress(step: int, loss: float) -> None:
        if _events is not None:
            _events.put(("step", index, step, loss))
        if _stop is not None and _stop.is_set():
            # NOTE: train() turns this into a clean stop with what it recorded
            raise KeyboardInterrupt

    if _stop is not None and _stop.is_set():
        return {"status": "not run", "error": "the sweep was interrupted first"}
    if _events is not None:
        _events.put(("start", index))
    try:
        result = run_experiment(cfg, name, run_dir, progress)
    except ActdiagError as err:
        return {"status": "failed", "error": str(err)}
    except Exception as err:  # noqa: BLE001 - one point must not stop the others
        return {"status": "failed", "error": f"{type(err).__name__}: {err}"}
    stats = result.stats
    if stats["diverged"] is not None:
        error = f"the loss was not finite at step {stats['diverged']}"
        return {"status": "diverged", "error": error}
    if stats["interrupted"] is not None:
        return {
            "status": "interrupted",
            "error": f"stopped at step {stats['interrupted']}",
        }
    return {"status": "ok", "error": None}


def available_cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def job_counts(jobs: int | None, n_points: int) -> tuple[int, int]:
    """(worker processes, torch threads per process) for `n_points` points."""
    cores = available_cores()
    jobs = max(1, min(jobs or cores, n_points))
    return jobs, max(1, cores // jobs)


def _drain(events, on_event: EventFn | None) -> None:
    """Hand every queued progress event to `on_event`."""
    while True:
        try:
            event = events.get_nowait()
        except Empty:
            return
        if on_event:
            on_event(event)


class Workers:
    """A pool of spawned worker processes with a progress queue and a stop flag."""

    def __init__(self, jobs: int, threads: int):
        ctx = multiprocessing.get_context("spawn")
        self.events, self.stop = ctx.Queue(), ctx.Event()
        self.pool = ProcessPoolExecutor(
            jobs,
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(self.events, self.stop, threads),
        )

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def run_points(
    workers: Workers,
    plan: Plan,
    dirs: list[Path],
    on_event: EventFn | None = None,
    on_done: Callable[[int, dict], None] | None = None,
) -> list[dict]:
    """Run every point on the workers; return one status per point.

    Ctrl-C asks the running points to stop (they keep what they recorded) and
    skips those not started; the caller sees statuses `interrupted` / `not run`.
    """
    statuses: list[dict | None] = [None] * len(plan.points)
    futures = {
        workers.pool.submit(run_point, p.index, p.config, p.label, d): p.index
        for p, d in zip(plan.points, dirs, strict=True)
    }

    # follow the points to the end, passing progress on as it comes
    pending = set(futures)
    try:
        while pending:
            done, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
            _drain(workers.events, on_event)
            for future in done:
                index = futures[future]
                statuses[index] = _outcome(future)
                if on_done:
                    on_done(index, statuses[index])
    except KeyboardInterrupt:
        workers.stop.set()
        for future in pending:
            future.cancel()
        for future, index in futures.items():
            if statuses[index] is None and not future.cancelled():
                statuses[index] = _outcome(future)
    _drain(workers.events, on_event)
    not_run = {"status": "not run", "error": "the sweep was interrupted first"}
    return [s if s is not None else dict(not_run) for s in statuses]


def _outcome(future) -> dict:
    """The status a finished future carries, or a failure when its process died."""
    try:
        return future.result()
    except BrokenProcessPool as err:
        return {"status": "failed", "error": f"its worker process died ({err})"}
    except Exception as err:  # noqa: BLE001
        return {"status": "failed", "error": f"{type(err).__name__}: {err}"}


# ---------------------------------------------------------------------------
# summary records, read back from each point's run directory


def pick_snapshot(stats: dict, step: int | None) -> dict | None:
    """The snapshot at `step`, or the first one when `step` is None."""
    snaps = stats["snapshots"]
    if step is None:
        return snaps[0] if snaps else None
    return next((s for s in snaps if s["step"] == step), None)


def layer_records(snapshot: dict | None) -> list[dict]:
    """Per watched layer: activation std, saturated percent and gradient std."""
    if snapshot is None:
        return []
    grads = {g["layer"]: g for g in snapshot["gradients"]}
    return [
        {
            "layer": a["layer"],
            "kind": a["kind"],
            "act_std": a["std"],
            "saturated": a.get("saturated"),
            "grad_std": grads.get(a["layer"], {}).get("std"),
        }
        for a in snapshot["activations"]
    ]


def largest_grad_to_data(snapshot: dict | None) -> dict | None:
    """The 2-D weight with the largest grad:data ratio in `snapshot`, or None."""
    if snapshot is None:
        return None
    weights = [w for w in snapshot["weights"] if w.get("grad_to_data") is not None]
    if not weights:
        return None
    top = max(weights, key=lambda w: w["grad_to_data"])
    return {"param": top["param"], "shape": top["shape"], "value": top["grad_to_data"]}


def final_update_to_data(stats: dict) -> list[dict]:
    """log10 update:data of every 2-D weight at the last step (None when undefined)."""
    return [
        {"param": p["param"], "shape": p["shape"], "value": p.get("update_to_data")}
        for p in stats["params"]
        if len(p["shape"]) == 2
    ]


def point_summary(stats: dict | None, at: int | None) -> dict:
    """The summary numbers of one run: layer table, loss, grad:data, update:data.

    Every key is present; with no run (`stats` None) the numbers are None or empty.
    """
    if stats is None:
        keys = (
            "steps",
            "loss",
            "val_loss",
            "diverged",
            "seconds",
            "at_step",
            "grad_to_data_max",
        )
        return {**dict.fromkeys(keys), "layers": [], "update_to_data": []}
    snapshot = pick_snapshot(stats, at)
    return {
        "steps": stats["steps"],
        "loss": stats["loss"],
        "val_loss": stats["val_loss"],
        "diverged": stats["diverged"],
        "seconds": stats["seconds"],
        "at_step": None if snapshot is None else snapshot["step"],
        "layers": layer_records(snapshot),
        "grad_to_data_max": largest_grad_to_data(snapshot),
        "update_to_data": final_update_to_data(stats),
    }


def point_record(
    point: Point,
    dirname: str,
    run_dir: Path,
    status: dict,
    threads: int,
    at: int | None,
) -> dict:
    """The sweep.json entry of one point, with its summary when its run was written."""
    record = {
        "point": point.index,
        "label": point.label,
        "labels": dict(point.labels),
        "values": {key: getattr(point.config, key) for key, _ in point.labels},
        "run_dir": dirname if run_dir.is_dir() else None,
        "status": status["status"],
        "error": status["error"],
        # torch threads the point trained with (its config's `threads`)
        "threads": point.config.threads,
    }
    stats = None
    if (run_dir / artifacts.STATS).is_file():
        try:
            stats = artifacts.read_stats(run_dir)
        except ActdiagError as err:
            record["status"], record["error"] = "failed", str(err)
    record.update(point_summary(stats, at))
    return record


def sweep_record(
    plan: Plan, points: list[dict], jobs: int, threads: int, seconds: float
) -> dict:
    """The whole sweep.json mapping."""
    return artifacts.clean(
        {
            "schema": SCHEMA,
            "version": __version__,
            "name": plan.name,
            **plan.sources,
            "keys": [axis.key for axis in plan.axes],
            "jobs": jobs,
            "threads": threads,
            "seconds": round(seconds, 3),
            "complete": all(p["status"] == "ok" for p in points),
            "points": points,
        }
    )


def read_sweep(sweep_dir: Path) -> dict:
    """Load a sweep's sweep.json with errors that name the path."""
    import json

    path = sweep_dir / SUMMARY
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ActdiagError(
            f"{sweep_dir}: not a sweep directory (no {SUMMARY})"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ActdiagError(
            f"{path}: unreadable or corrupt sweep file ({err})"
        ) from None
    if not isinstance(record, dict) or record.get("schema", math.inf) > SCHEMA:
        raise ActdiagError(f"{path}: not a sweep file this actdiag reads (schema)")
    return record


# ---------------------------------------------------------------------------
# the whole sweep


@dataclass
class Sweep:
    """Where a finished sweep lives and its summary record."""

    sweep_dir: Path
    record: dict


def run_sweep(
    plan: Plan,
    out: Path | None = None,
    jobs: int | None = None,
    on_event: EventFn | None = None,
    on_done: Callable[[int, dict], None] | None = None,
    plots: bool = True,
    at: int | None = None,
) -> Sweep:
    """Run every point of `plan` into a fresh sweep directory; write sweep.json.

    `at` picks the snapshot step the layer summary reads (default: the first).
    The figures are drawn on the workers too, one per process at a time.
    """
    start = time.perf_counter()
    sweep_dir = artifacts.make_run_dir("sweep", out)
    names = unique_dirnames(plan.points)
    dirs = [sweep_dir / name for name in names]
    jobs, threads = job_counts(jobs, len(plan.points))
    with Workers(jobs, threads) as workers:
        # train, then summarise each point from its run directory
        statuses = run_points(workers, plan, dirs, on_event, on_done)
        points = [
            point_record(p, name, d, status, threads, at)
            for p, name, d, status in zip(
                plan.points, names, dirs, statuses, strict=True
            )
        ]
        seconds = time.perf_counter() - start
        record = sweep_record(plan, points, jobs, threads, seconds)
        artifacts.write_json(sweep_dir / SUMMARY, record)

        # the figures, drawn from what was just written
        if plots:
            figures = [workers.pool.submit(draw_figure, sweep_dir, f) for f in FIGURES]
            for future in figures:
                future.result()

    # the page that gathers the points, their figures and findings
    from actdiag.report import write_sweep_report

    write_sweep_report(sweep_dir)
    return Sweep(sweep_dir, record)


def draw_figure(sweep_dir: Path, name: str) -> Path:
    """Draw one of the sweep's FIGURES from sweep.json and the run directories."""
    from actdiag.plots import plot_sweep

    record = read_sweep(sweep_dir)
    return plot_sweep(sweep_dir, record, load_runs(sweep_dir, record), [name])[0]


def load_runs(sweep_dir: Path, record: dict) -> list[dict | None]:
    """Per point, {"stats", "series"} read from its run directory, or None."""
    runs: list[dict | None] = []
    for point in record["points"]:
        run_dir = point["run_dir"]
        if run_dir is None or point.get("steps") is None:
            runs.append(None)
            continue
        path = sweep_dir / run_dir
        runs.append(
            {"stats": artifacts.read_stats(path), "series": artifacts.read_series(path)}
        )
    return runs
