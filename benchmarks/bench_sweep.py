"""Time a gain sweep against the same runs made one after another.

Both sides are what a user would type: `actdiag run` once per gain, then one
`actdiag sweep` over the same gains. Each side is a fresh process (imports,
training, files and figures all counted) on the shipped data/names.txt.
The one-after-another side runs twice, at torch's default thread count and
at one thread, and the ratio is taken against the faster of the two.

    python benchmarks/bench_sweep.py [--steps 1001] [--gains 0.5,1,5/3,3] [--jobs N]

Goal on a 2-core machine: sweep time <= 0.6 x one-after-another time.
"""

from __future__ import annotations

import argparse
import os
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


def timed(cmd: list[str], env: dict[str, str]) -> float:
    """Seconds `cmd` took; stops the benchmark when it fails."""
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr}")
    return seconds


def one_after_another(gains: list[str], steps: int, work: Path, env: dict) -> float:
    """Seconds for `actdiag run` at each gain, one after the other."""
    total = 0.0
    for i, gain in enumerate(gains):
        cmd = [*ACTDIAG, "run", str(CONFIG), "--set", f"gain={gain}",
               "--set", f"steps={steps}", "--set", f"data={DATA}", "-q",
               "--out", str(work / f"run{i}")]
        total += timed(cmd, env)
    return total


def main() -> None:
    """Parse arguments, time both sides, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1001)
    parser.add_argument("--gains", default="0.5,1,5/3,3")
    parser.add_argument("--jobs", type=int, default=None)
    args = parser.parse_args()
    gains = args.gains.split(",")
    work = Path(tempfile.mkdtemp(prefix="bench_sweep."))
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    one_thread = {**env, "OMP_NUM_THREADS": "1"}
    try:
        # the runs one after another, at the default thread count and at one
        seq_default = one_after_another(gains, args.steps, work / "default", env)
        seq_one = one_after_another(gains, args.steps, work / "one", one_thread)

        # the same runs as one sweep
        cmd = [*ACTDIAG, "sweep", str(CONFIG), "--gains", args.gains,
               "--steps", str(args.steps), "--set", f"data={DATA}", "-q",
               "--out", str(work / "sweep")]
        if args.jobs:
            cmd += ["--jobs", str(args.jobs)]
        parallel = timed(cmd, env)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    # report
    sequential = min(seq_default, seq_one)
    print(f"{len(gains)} points x {args.steps} steps on {os.cpu_count()} cores "
          f"(load average {os.getloadavg()[0]:.1f})")
    print(f"one after another, default threads: {seq_default:7.1f} s")
    print(f"one after another, 1 thread:        {seq_one:7.1f} s")
    print(f"sweep:                              {parallel:7.1f} s")
    print(f"ratio sweep / faster one-after-another: {parallel / sequential:.2f} "
          f"(goal <= 0.6)")


if __name__ == "__main__":
    main()
