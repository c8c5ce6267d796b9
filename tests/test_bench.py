"""The benchmark script runs its three variants and prints its table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from actdiag.config import Config
from actdiag.data import load_dataset

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_train.py"


def load_bench():
    """Import benchmarks/bench_train.py as a module."""
    spec = importlib.util.spec_from_file_location("bench_train", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_interleaves_the_variants_and_reports(tmp_path, capsys):
    bench = load_bench()
    path = tmp_path / "words.txt"
    path.write_text("\n".join(["anna", "bob", "clara", "dave", "emma", "fred"] * 5))
    data = load_dataset(path, context=3)
    cfg = Config(width=8, depth=2, steps=3, snapshots=(1,), threads=1)
    before = torch.get_num_threads()
    timings = bench.bench_preset("tiny", cfg, data, repeats=2)
    assert torch.get_num_threads() == before
    for kind in ("cpu", "wall"):
        assert set(timings[kind]) == {"a", "b", "c"}
        assert all(len(v) == 2 and min(v) > 0 for v in timings[kind].values())
    bench.report("tiny", cfg, timings)
    out = capsys.readouterr().out
    assert "tiny: 3 steps, batch 32, batchnorm off, 2 rounds" in out
    for label in ("a plain", "b actdiag", "c notebk", "b/a", "c/a", "best of 2"):
        assert label in out, out
