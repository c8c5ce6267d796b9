"""Time `actdiag compare` of two long runs: the library call and the whole command.

Without arguments it builds two synthetic 200,000-step run directories: a short
real run of the lecture's network (depth 5, width 100) on the shipped
data/names.txt, its series.npz then replaced by 200,000 steps of made-up
update:data and loss, once at gain 5/3 and once at gain 1. With two run
directories as arguments it compares those instead (they are only read).

Printed, each the median of `--repeats` tries, every try into a fresh folder:
- `compare_runs`: the comparison, compare.json, five pictures and report.html,
  in this process (imports already warm after the first try, which is not counted);
- `actdiag compare`: the command as a user types it, in a fresh process each time.
Each with its wall-clock seconds and the CPU seconds it used, the forked drawing
process included; the load average as the script starts says how busy the
machine was (on a shared machine the wall clock follows the load, CPU time less).

    python benchmarks/bench_compare.py [RUN_A RUN_B] [--steps 200000] [--repeats 3]

Goal on an otherwise idle 2-core machine: `actdiag compare` under 2 s.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "names.txt"
ACTDIAG = [sys.executable, "-c", "from actdiag.cli import main; main()"]


def synthetic_run(root: Path, name: str, gain: str, steps: int) -> Path:
    """A real 3-step run whose series.npz and step count are stretched to `steps`."""
    from actdiag import artifacts
    from actdiag.config import load_config
    from actdiag.runner import run_experiment

    sets = [f"data={DATA}", "depth=5", "width=100", "steps=3", "snapshots=[1,2]"]
    cfg = load_config(None, [*sets, f"gain={gain}"])
    run_dir = run_experiment(cfg, name, root / name, plots=False).run_dir

    # made-up series: a slow drift with noise and the lr decay three quarters in
    n_params = len(json.loads((run_dir / artifacts.STATS).read_text())["params"])
    rng = np.random.default_rng(0)
    t = np.arange(steps, dtype=np.float32)[:, None]
    drift = -2.5 - 0.3 * t / steps - 1.0 * (t > 0.75 * steps)
    ud = drift + rng.normal(0, 0.05, size=(steps, n_params))
    loss = 3.3 * np.exp(-t[:, 0] / (0.1 * steps)) + 2.0
    buf = io.BytesIO()
    np.savez(buf, loss=loss.astype(np.float32), update_to_data=ud.astype(np.float32))
    (run_dir / artifacts.SERIES).write_bytes(buf.getvalue())
    stats = json.loads((run_dir / artifacts.STATS).read_text())
    stats["steps"] = steps
    (run_dir / artifacts.STATS).write_text(json.dumps(stats))
    return run_dir


def cpu_seconds() -> float:
    """CPU seconds used so far by this process and every child it has waited for."""
    usage = [
        resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    ]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def time_library(runs: list[Path], work: Path, repeats: int) -> dict[str, list]:
    """Wall and CPU seconds of `compare_runs` per try, after an untimed warm-up."""
    from actdiag.compare import compare_runs

    compare_runs(runs, out=work / "warm")
    times = {"wall": [], "cpu": []}
    for i in range(repeats):
        start, cpu = time.perf_counter(), cpu_seconds()
        compare_runs(runs, out=work / f"lib{i}")
        times["wall"].append(time.perf_counter() - start)
        times["cpu"].append(cpu_seconds() - cpu)
    return times


def time_command(runs: list[Path], work: Path, repeats: int) -> dict[str, list]:
    """Wall and CPU seconds of a fresh `actdiag compare` process per try."""
    times = {"wall": [], "cpu": []}
    for i in range(repeats):
        cmd = [*ACTDIAG, "compare", *map(str, runs), "--out", str(work / f"cli{i}")]
        start, cpu = time.perf_counter(), cpu_seconds()
        done = subprocess.run(cmd, capture_output=True, text=True)
        times["wall"].append(time.perf_counter() - start)
        times["cpu"].append(cpu_seconds() - cpu)
        if done.returncode != 0:
            sys.exit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path, help="two run directories")
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if len(args.runs) not in (0, 2):
        parser.error("give two run directories, or none for synthetic ones")
    load = os.getloadavg()[0]  # before this script adds its own

    with tempfile.TemporaryDirectory(prefix="bench_compare_") as tmp:
        work = Path(tmp)
        runs = args.runs
        if not runs:
            print(
                f"building two synthetic {args.steps:,}-step runs ...", file=sys.stderr
            )
            runs = [
                synthetic_run(work, "gain_5_3", "5/3", args.steps),
                synthetic_run(work, "gain_1", "1", args.steps),
            ]
        lib = time_library(runs, work, args.repeats)
        cli = time_command(runs, work, args.repeats)

    shown_runs = ", ".join(map(str, args.runs)) or f"two synthetic {args.steps:,}-step"
    print(
        f"runs: {shown_runs}; load average before: {load:.2f} on {os.cpu_count()} cores"
    )
    for label, times in (("compare_runs", lib), ("actdiag compare", cli)):
        shown = " ".join(f"{t:.2f}" for t in times["wall"])
        print(
            f"{label:16s} median {statistics.median(times['wall']):.2f} s"
            f" (tries: {shown}; target < 2 s),"
            f" CPU {statistics.median(times['cpu']):.2f} s"
        )


if __name__ == "__main__":
    main()
