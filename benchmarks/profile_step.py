"""Where a training step's time goes: the lecture's loop against actdiag's step.

Times each phase of every step with a wall clock, in one process, the variants
interleaved round by round, and prints per-step medians in microseconds:

  forward   batch indexing, the model and the loss
  backward  zeroing the gradients (actdiag) and loss.backward()
  update    the lecture's `p.data += -lr * p.grad` per parameter, or
            FusedSGD's two-op update
  ratios    actdiag only: the per-step block statistics, plus the window's
            drain (turning them into ratios) spread over the window's steps

Variants: `lecture` (no diagnostics), `actdiag` (update and every ratio) and
`update only` (FusedSGD's update with the ratios left out), which isolates
what the ratios cost from what the fused update saves.

    python benchmarks/profile_step.py [--steps N] [--repeats R] [--batchnorm]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from actdiag.config import Config, load_config
from actdiag.data import DEFAULT_DATA, Dataset, load_dataset
from actdiag.fused import FusedSGD
from actdiag.model import MLP, cross_entropy

ROOT = Path(__file__).resolve().parent.parent
PHASES = ("forward", "backward", "update", "ratios")
VARIANTS = ("lecture", "actdiag", "update only")


def profile(cfg: Config, data: Dataset, variant: str) -> dict[str, float]:
    """Run `cfg.steps` steps of one variant; the median microseconds per phase."""
    g = torch.Generator().manual_seed(cfg.seed)
    model = MLP(cfg, data.vocab_size, g)
    params = list(model.parameters())
    sgd = None if variant == "lecture" else FusedSGD(params)
    Xtr, Ytr = data.splits["train"]
    times: dict[str, list[float]] = {phase: [] for phase in PHASES}
    drains: list[float] = []
    clock = time.perf_counter_ns
    for step in range(1, cfg.steps + 1):
        lr = cfg.lr_at(step)

        # forward
        t0 = clock()
        ix = torch.randint(0, Xtr.shape[0], (cfg.batch_size,), generator=g)
        loss = cross_entropy(model(Xtr[ix]), Ytr[ix])

        # backward
        t1 = clock()
        if sgd is None:
            for p in params:
                p.grad = None
        else:
            sgd.zero_grad()
        loss.backward()

        # update
        t2 = clock()
        if sgd is None:
            for p in params:
                p.data += -lr * p.grad
        else:
            torch.mul(sgd.grad, -lr, out=sgd.update)
            sgd.weight.add_(sgd.update)

        # ratios: this step's statistics, and the drain when the window is full
        t3 = clock()
        if variant == "actdiag":
            sgd.record()
            if sgd.pending == sgd.window:
                t4 = clock()
                sgd.drain()
                drains.append(clock() - t4)
        t5 = clock()
        for phase, ns in zip(PHASES, (t1 - t0, t2 - t1, t3 - t2, t5 - t3), strict=True):
            times[phase].append(ns / 1e3)

    # a drain runs once per window: its time is added spread over the window
    medians = {phase: statistics.median(values) for phase, values in times.items()}
    if drains:
        medians["ratios"] += statistics.median(drains) / 1e3 / sgd.window
    return medians


def main() -> None:
    """Parse arguments, interleave the variants and print the per-phase medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="steps per run")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--batchnorm", action="store_true", help="batchnorm on")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="words file")
    args = parser.parse_args()

    torch.set_num_threads(1)
    sets = [f"steps={args.steps}", f"data={args.data}", "decay_after=null"]
    if args.batchnorm:
        sets.append("batchnorm=on")
    cfg = load_config(ROOT / "configs" / "gain_5_3.yaml", sets)
    data = load_dataset(Path(cfg.data), cfg.context, cfg.split_seed)
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    for r in range(args.repeats):
        order = VARIANTS if r % 2 == 0 else VARIANTS[::-1]
        for variant in order:
            runs[variant].append(profile(cfg, data, variant))

    print(
        f"torch {torch.__version__}, 1 thread, {cfg.steps} steps x {args.repeats} "
        f"rounds, batchnorm {'on' if cfg.batchnorm else 'off'}"
    )
    print("median microseconds per step (medians over rounds)")
    print(f"{'':12}" + "".join(f"{p:>10}" for p in (*PHASES, "total")))
    for variant, rounds in runs.items():
        row = {p: statistics.median(r[p] for r in rounds) for p in PHASES}
        cells = "".join(f"{row[p]:10.1f}" for p in PHASES)
        print(f"{variant:12}{cells}{sum(row.values()):10.1f}")
    print(
        "lecture: p.data += -lr * p.grad per parameter, nothing recorded; "
        "actdiag: fused update and every ratio; update only: fused update, no ratios"
    )


if __name__ == "__main__":
    main()
