"""The benchmark scripts run their variants and print their tables."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from actdiag.config import Config
from actdiag.data import load_dataset

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load_bench(name: str = "bench_train"):
    """Import benchmarks/<name>.py as a module."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
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


def test_profile_step_times_every_phase_of_every_variant(tmp_path):
    from actdiag.fused import WINDOW

    profile = load_bench("profile_step")
    path = tmp_path / "words.txt"
    path.write_text("\n".join(["anna", "bob", "clara", "dave", "emma", "fred"] * 5))
    data = load_dataset(path, context=3)
    cfg = Config(width=8, depth=2, steps=WINDOW + 3, threads=1)
    for variant in profile.VARIANTS:
        times = profile.profile(cfg, data, variant)
        assert set(times) == set(profile.PHASES)
        assert min(times["forward"], times["backward"], times["update"]) > 0
        if variant == "actdiag":
            assert times["ratios"] > 0
        else:
            assert times["ratios"] < times["update"]


def test_bench_compile_reports_break_even_in_steps(capsys):
    compile_bench = load_bench("bench_compile")
    compile_bench.report("plain", 0.6, 0.65, (0.45, 20.0), (0.45, 2.0))
    out = capsys.readouterr().out
    # 20 s saved back at 0.2 ms a step: 100,000 steps; 2 s: 10,000
    assert "break-even vs eager 100,000 steps" in out, out
    assert "break-even vs eager 10,000 steps" in out, out
    compile_bench.report("slow", 0.6, 0.65, (0.70, 20.0), (0.70, 2.0))
    assert "break-even vs eager never" in capsys.readouterr().out
