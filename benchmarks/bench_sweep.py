"""Time a gain sweep against the same runs made one after another.

Both sides are what a user would type: `actdiag run` once per gain, then one
`actdiag sweep` over the same gains. Each is a fresh process (imports, training,
files and figures all counted) on the shipped data/names.txt. The runs one after
another use one torch thread (on a small MLP more threads mostly wait on each
other); `--default-threads` also times them at torch's default, and the ratio is
taken against the faster one-after-another time.

Wall time depends on how many cores the machine really gives right now, so the
benchmark first measures that (the same busy loop alone and two at once) and
prints the CPU seconds of each side next to its wall time.

    python benchmarks/bench_sweep.py [--steps 1001] [--gains 0.5,1,5/3,3] [--jobs N]

Goal on an otherwise idle 2-core machine: sweep time <= 0.6 x one-after-another.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "gain_5_3.yaml"
DATA = ROOT / "data" / "names.txt"
ACTDIAG = [sys.executable, "-c", "from actdiag.cli import main; main()"]


BUSY = "x = 0\nfor i in range(20_000_000):\n    x += i"


def children_cpu() -> float:
    """CPU seconds (user + system) of every finished child process so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of `cmd` and its own children; exits when it fails."""
    cpu, start = children_cpu(), time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr}")
    return wall, children_cpu() - cpu


def capacity() -> float:
    """How many times faster two busy loops finish at once than one after another."""
    one = [sys.executable, "-c", BUSY]
    start = time.perf_counter()
    subprocess.run(one, check=True)
    alone = time.perf_counter() - start
    start = time.perf_counter()
    both = [subprocess.Popen(one) for _ in range(2)]
    for p in both:
        p.wait()
    return 2 * alone / (time.perf_counter() - start)


def one_after_another(
    gains: list[str], steps: int, work: Path, env: dict
) -> tuple[float, float]:
    """(wall, CPU) seconds for `actdiag run` at each gain, one after the other."""
    wall = cpu = 0.0
    for i, gain in enumerate(gains):
        cmd = [
            *ACTDIAG,
            "run",
            str(CONFIG),
            "--set",
            f"gain={gain}",
            "--set",
            f"steps={steps}",
            "--set",
            f"data={DATA}",
            "-q",
            "--out",
            str(work / f"run{i}"),
        ]
        w, c = timed(cmd, env)
        wall, cpu = wall + w, cpu + c
    return wall, cpu


def main() -> None:
    """Parse arguments, time both sides, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1001)
    parser.add_argument("--gains", default="0.5,1,5/3,3")
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument(
        "--default-threads",
        action="store_true",
        help="also time the runs at torch's default thread count",
    )
    args = parser.parse_args()
    gains = args.gains.split(",")
    work = Path(tempfile.mkdtemp(prefix="bench_sweep."))
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    one_thread = {**env, "OMP_NUM_THREADS": "1"}
    try:
        # what two processes really get from the machine right now
        speedup = capacity()

        # the runs one after another, then the same runs as one sweep
        seq = {
            "1 thread": one_after_another(gains, args.steps, work / "one", one_thread)
        }
        if args.default_threads:
            seq["default threads"] = one_after_another(
                gains, args.steps, work / "default", env
            )
        cmd = [
            *ACTDIAG,
            "sweep",
            str(CONFIG),
            "--gains",
            args.gains,
            "--steps",
            str(args.steps),
            "--set",
            f"data={DATA}",
            "-q",
            "--out",
            str(work / "sweep"),
        ]
        if args.jobs:
            cmd += ["--jobs", str(args.jobs)]
        parallel = timed(cmd, env)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    # report
    print(
        f"{len(gains)} points x {args.steps} steps, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}; two busy processes ran "
        f"{speedup:.2f}x as fast as one after another (2.00 on an idle machine)"
    )
    for name, (wall, cpu) in seq.items():
        print(
            f"one after another, {name + ':':17s} {wall:6.1f} s wall {cpu:6.1f} s CPU"
        )
    print(f"sweep:{'':30s}{parallel[0]:6.1f} s wall {parallel[1]:6.1f} s CPU")
    sequential = min(wall for wall, _ in seq.values())
    print(
        f"ratio sweep / one after another: {parallel[0] / sequential:.2f} "
        f"(goal <= 0.6; best possible now about {1 / speedup:.2f})"
    )


if __name__ == "__main__":
    main()
