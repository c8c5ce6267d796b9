"""Time actdiag's training against a plain PyTorch loop and notebook-style logging.

For each preset, in one process and interleaved (a and b run side by side in every
round, each going first in half of them):

  a  plain   the lecture's loop with no diagnostics: same model, data, batch and SGD
  b  actdiag `actdiag.train.train` with every diagnostic on (update:data every
             step, loss every step, snapshots as the preset configures them)
  c  notebook the lecture's loop plus its logging: one `.item()` per parameter
             per step for update:data and one for the loss

Each variant runs the whole preset (model built, every step; b without the val
loss it computes after the last step) and is timed end to end in process CPU
time, which other programs on a shared machine do not inflate when torch runs
on one thread. Prints steps per CPU second per round and the medians, with b/a
and c/a taken round by round, the ratios of the best rounds, then the median
ratios in wall-clock time.

    python benchmarks/bench_train.py [--steps N] [--repeats R] [--threads T]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from actdiag.config import Config, load_config
from actdiag.data import DEFAULT_DATA, Dataset, load_dataset
from actdiag.model import MLP, cross_entropy
from actdiag.train import train

ROOT = Path(__file__).resolve().parent.parent
PRESETS = {
    "plain": (ROOT / "configs" / "gain_5_3.yaml", []),
    "batchnorm": (ROOT / "configs" / "gain_5_3.yaml", ["batchnorm=on"]),
}


def lecture_loop(cfg: Config, data: Dataset, log: bool) -> None:
    """The lecture's training loop; with `log`, its notebook logging as well.

    The logging reads the host once per parameter per step (update:data) and
    once for the loss, as the lecture's notebook does.
    """
    g = torch.Generator().manual_seed(cfg.seed)
    model = MLP(cfg, data.vocab_size, g)
    parameters = list(model.parameters())
    Xtr, Ytr = data.splits["train"]
    lossi, ud = [], []
    for step in range(1, cfg.steps + 1):
        ix = torch.randint(0, Xtr.shape[0], (cfg.batch_size,), generator=g)
        loss = cross_entropy(model(Xtr[ix]), Ytr[ix])
        for p in parameters:
            p.grad = None
        loss.backward()
        lr = cfg.lr_at(step)
        for p in parameters:
            p.data += -lr * p.grad
        if log:
            lossi.append(loss.log10().item())
            with torch.no_grad():
                ud.append(
                    [
                        ((lr * p.grad).std() / p.data.std()).log10().item()
                        for p in parameters
                    ]
                )


def plain(cfg: Config, data: Dataset) -> None:
    """The lecture's training loop, nothing recorded."""
    lecture_loop(cfg, data, log=False)


def notebook(cfg: Config, data: Dataset) -> None:
    """The lecture's loop with its logging: a host read per parameter per step."""
    lecture_loop(cfg, data, log=True)


def actdiag(cfg: Config, data: Dataset) -> None:
    """actdiag's training with every diagnostic on, minus the final val loss.

    The val loss after the last step is an evaluation, not a diagnostic, and a
    and c do not compute one: an empty val split skips it.
    """
    empty = data.splits["val"][0][:0], data.splits["val"][1][:0]
    train(cfg, Dataset(data.chars, {**data.splits, "val": empty}))


VARIANTS = {"a": plain, "b": actdiag, "c": notebook}
ORDERS = ["abc", "cba", "bac", "cab"]


def steps_per_second(fn, cfg: Config, data: Dataset) -> tuple[float, float]:
    """Run one variant over the whole config; steps per CPU second and per second.

    With one torch thread all the work runs on this process's CPU time, which
    other programs on a shared machine do not inflate; wall time is kept too.
    """
    cpu, wall = time.process_time(), time.perf_counter()
    fn(cfg, data)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cfg.steps / cpu, cfg.steps / wall


def bench_preset(name: str, cfg: Config, data: Dataset, repeats: int) -> dict:
    """Interleave a, b and c `repeats` times; return steps/s lists per variant."""
    keys = list(VARIANTS)
    warm = Config(**{**cfg.__dict__, "steps": 20, "snapshots": ()})
    for key in keys:
        VARIANTS[key](warm, data)
    rates: dict[str, list[float]] = {key: [] for key in keys}
    walls: dict[str, list[float]] = {key: [] for key in keys}
    for r in range(repeats):
        # a and b side by side in every round, each first half of the time
        order = ORDERS[r % len(ORDERS)]
        for key in order:
            rate, wall = steps_per_second(VARIANTS[key], cfg, data)
            rates[key].append(rate)
            walls[key].append(wall)
    return {"cpu": rates, "wall": walls}


def ratios(rates: dict[str, list[float]], key: str) -> list[float]:
    """Round-by-round ratio of variant `key` to the plain loop."""
    return [x / a for a, x in zip(rates["a"], rates[key], strict=True)]


def report(name: str, cfg: Config, timings: dict) -> None:
    """Print one preset's table: steps per CPU second per round, medians, ratios."""
    rates, walls = timings["cpu"], timings["wall"]
    rounds = len(rates["a"])
    print(
        f"\n{name}: {cfg.steps} steps, batch {cfg.batch_size}, "
        f"batchnorm {'on' if cfg.batchnorm else 'off'}, {rounds} rounds"
    )
    head = "  ".join(f"{'r' + str(i + 1):>7}" for i in range(rounds))
    print(f"{'':10}{head}  {'median':>7}")
    for key, label in (("a", "a plain"), ("b", "b actdiag"), ("c", "c notebk")):
        row = "  ".join(f"{v:7.0f}" for v in rates[key])
        print(f"{label:10}{row}  {statistics.median(rates[key]):7.0f}  steps/cpu-s")
    for key in ("b", "c"):
        values = ratios(rates, key)
        row = "  ".join(f"{v:7.3f}" for v in values)
        print(f"{key + '/a':10}{row}  {statistics.median(values):7.3f}")
    best = {key: max(rates[key]) / max(rates["a"]) for key in ("b", "c")}
    print(
        f"best of {rounds}: b/a {best['b']:.3f}, c/a {best['c']:.3f} (load only slows)"
    )
    wall = {key: statistics.median(ratios(walls, key)) for key in ("b", "c")}
    print(
        f"wall clock: a {statistics.median(walls['a']):.0f} steps/s, "
        f"b/a {wall['b']:.3f}, c/a {wall['c']:.3f} (medians; load-sensitive)"
    )


def main() -> None:
    """Parse arguments and benchmark every preset."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="steps per run (default: the preset's own)",
    )
    parser.add_argument("--repeats", type=int, default=11, help="interleaved rounds")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="words file")
    parser.add_argument(
        "--preset",
        choices=list(PRESETS),
        action="append",
        help="benchmark only this preset (repeatable)",
    )
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} CPU thread(s), data {args.data}")
    for name in args.preset or list(PRESETS):
        path, sets = PRESETS[name]
        sets = [*sets, f"threads={args.threads}", f"data={args.data}"]
        if args.steps:
            sets.append(f"steps={args.steps}")
        cfg = load_config(path, sets)
        data = load_dataset(Path(cfg.data), cfg.context, cfg.split_seed)
        report(name, cfg, bench_preset(name, cfg, data, args.repeats))


if __name__ == "__main__":
    main()
