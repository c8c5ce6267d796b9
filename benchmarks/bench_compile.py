"""What `compile: on` costs and saves: compile time, step time and break-even.

For each preset, in one process, one torch thread:

  plain     the lecture's loop, no diagnostics (benchmarks/bench_train.py's a)
  eager     actdiag's training, every diagnostic on, compile off
  compiled  the same with compile on: first with an empty compiler cache (a
            fresh TORCHINDUCTOR_CACHE_DIR, as on a new machine), then again in
            this process, from the cache the first run filled (a new process
            with a filled cache also pays for loading the compiler: about 2 s)

Step times are wall-clock milliseconds per step over steps 201 to the end, so
they leave out the compile (at step 2) and warm-up; read on an idle machine.
Break-even is compile seconds over the per-step saving against eager actdiag.

    python benchmarks/bench_compile.py [--steps N] [--preset plain|batchnorm]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FULL_RUN = 200_000  # the lecture's full run, for the projection


def main() -> None:
    """Parse arguments, point the compiler cache at an empty folder, time each preset."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000, help="steps per run")
    parser.add_argument("--preset", choices=["plain", "batchnorm"], action="append")
    parser.add_argument("--data", type=Path, default=None, help="words file")
    args = parser.parse_args()

    # an empty cache, set before torch loads, so the first compile is a cold one
    with tempfile.TemporaryDirectory(prefix="actdiag-inductor-") as cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
        bench(args)


def bench(args: argparse.Namespace) -> None:
    """Time plain, eager and compiled runs of each preset and print the table."""
    import torch

    from actdiag.config import load_config
    from actdiag.data import DEFAULT_DATA, load_dataset
    from actdiag.train import train

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_train import plain

    torch.set_num_threads(1)
    data_path = args.data or DEFAULT_DATA
    print(f"torch {torch.__version__}, 1 thread, {args.steps} steps, data {data_path}")
    for preset in args.preset or ["plain", "batchnorm"]:
        sets = [f"steps={args.steps}", f"data={data_path}", "decay_after=null"]
        sets += ["batchnorm=on"] if preset == "batchnorm" else []
        cfg = load_config(ROOT / "configs" / "gain_5_3.yaml", sets)
        data = load_dataset(Path(cfg.data), cfg.context, cfg.split_seed)
        compiled = load_config(
            ROOT / "configs" / "gain_5_3.yaml", [*sets, "compile=on"]
        )

        # the plain loop has no progress hook: its time per step is the whole run's
        start = time.perf_counter()
        plain(cfg, data)
        plain_ms = (time.perf_counter() - start) / cfg.steps * 1e3
        eager_ms, _ = step_ms(train, cfg, data)
        cold_ms, cold_s = step_ms(train, compiled, data)
        warm_ms, warm_s = step_ms(train, compiled, data)
        report(preset, plain_ms, eager_ms, (cold_ms, cold_s), (warm_ms, warm_s))


def step_ms(train, cfg, data) -> tuple[float, float | None]:
    """Milliseconds per step over steps 201 to the end, and the compile seconds."""
    stamps: list[tuple[int, float]] = []
    result = train(
        cfg, data, progress=lambda s, _: stamps.append((s, time.perf_counter()))
    )
    (s0, t0), (s1, t1) = stamps[1], stamps[-1]
    return (t1 - t0) / (s1 - s0) * 1e3, result.compile_seconds


def report(preset: str, plain_ms: float, eager_ms: float, cold, warm) -> None:
    """Print one preset's step times, compile times, break-even and projection."""
    print(f"\n{preset}")
    print(f"  {'plain loop':20} {plain_ms:6.3f} ms/step (includes model build)")
    print(f"  {'actdiag eager':20} {eager_ms:6.3f} ms/step")
    for label, (ms, seconds) in (("cold cache", cold), ("again", warm)):
        saving = eager_ms - ms
        even = f"{seconds * 1e3 / saving:,.0f} steps" if saving > 0 else "never"
        full = seconds + FULL_RUN * ms / 1e3
        print(
            f"  {'compiled, ' + label:20} {ms:6.3f} ms/step, compile {seconds:5.1f} s, "
            f"break-even vs eager {even}; {FULL_RUN:,} steps: {full:5.0f} s "
            f"(eager {FULL_RUN * eager_ms / 1e3:.0f} s, plain {FULL_RUN * plain_ms / 1e3:.0f} s)"
        )


if __name__ == "__main__":
    main()
