"""The training loop: divergence checks and threads (the lecture table: test_reference)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from actdiag.config import Config, load_config
from actdiag.data import load_dataset
from actdiag.train import train
from tests.conftest import WORDS as NAMES

WORDS = NAMES


@pytest.fixture
def data(tmp_path: Path):
    """A small dataset from a words file written here."""
    path = tmp_path / "words.txt"
    path.write_text("\n".join(WORDS * 4) + "\n")
    return load_dataset(path, context=3)


def tiny(**overrides) -> Config:
    """A small config: fast steps, no decay."""
    return Config(
        **{"width": 16, "depth": 2, "steps": 30, "decay_after": None, **overrides}
    )


def assert_same_records(a, b) -> None:
    """Two runs recorded the same losses, ratios, snapshots and divergence."""
    assert a.diverged == b.diverged
    np.testing.assert_array_equal(a.loss, b.loss)
    np.testing.assert_array_equal(a.update_to_data, b.update_to_data)
    assert [s["step"] for s in a.snapshots] == [s["step"] for s in b.snapshots]
    assert a.snapshots == b.snapshots


def test_batched_check_matches_the_per_step_check(data):
    cfg = tiny(snapshots=(5, 17))
    each = train(cfg, data, check_every=1)
    batched = train(cfg, data, check_every=7)
    assert each.diverged is None and each.steps_done == 30
    assert_same_records(each, batched)
    assert batched.val_loss == each.val_loss


def diverging(data) -> Config:
    """A config whose loss turns non-finite after a few good steps."""
    cfg = tiny(tanh=False, lr=3.0, steps=60, snapshots=(1, 2, 40))
    first = train(cfg, data, check_every=1)
    assert first.diverged is not None and first.diverged >= 3, first.diverged
    return cfg


@pytest.mark.parametrize("every", [4, 7, 100])
def test_batched_check_truncates_at_the_first_nonfinite_loss(data, every):
    cfg = diverging(data)
    each = train(cfg, data, check_every=1)
    batched = train(cfg, data, check_every=every)
    assert_same_records(each, batched)
    assert batched.steps_done == batched.diverged - 1
    assert np.isfinite(batched.loss).all()
    assert [s["step"] for s in batched.snapshots] == [1, 2]
    assert batched.val_loss is None


def test_threads_are_set_for_training_and_restored(data, monkeypatch):
    seen = []
    monkeypatch.setattr(
        "actdiag.train.weight_records",
        lambda model: seen.append(torch.get_num_threads()) or [],
    )
    before = torch.get_num_threads()
    train(tiny(threads=1, steps=2), data)
    assert seen == [1]
    assert torch.get_num_threads() == before


def test_threads_must_be_positive():
    with pytest.raises(Exception, match="key 'threads' is 0; it must be >= 1"):
        load_config(None, ["threads=0"])


@pytest.mark.parametrize("batchnorm", [False, True])
def test_records_match_the_lecture_loop_across_ratio_windows(data, batchnorm):
    from actdiag import stats
    from actdiag.fused import WINDOW
    from actdiag.model import MLP, cross_entropy

    # more steps than two windows, ending inside the third
    cfg = tiny(steps=2 * WINDOW + 9, batchnorm=batchnorm, lr=0.2)
    result = train(cfg, data)

    # the lecture's loop, one parameter at a time
    g = torch.Generator().manual_seed(cfg.seed)
    model = MLP(cfg, data.vocab_size, g)
    params = list(model.parameters())
    Xtr, Ytr = data.splits["train"]
    losses, ratios = [], []
    for step in range(1, cfg.steps + 1):
        ix = torch.randint(0, Xtr.shape[0], (cfg.batch_size,), generator=g)
        loss = cross_entropy(model(Xtr[ix]), Ytr[ix])
        for p in params:
            p.grad = None
        loss.backward()
        lr = cfg.lr_at(step)
        for p in params:
            p.data += -lr * p.grad
        losses.append(loss.item())
        ratios.append(stats.update_to_data_all(lr, params))

    np.testing.assert_array_equal(result.loss, np.array(losses, np.float32))
    expected = torch.stack(ratios).numpy()
    assert result.update_to_data.shape == expected.shape
    np.testing.assert_allclose(result.update_to_data, expected, rtol=0, atol=2e-6)


@pytest.mark.skipif(
    not any(shutil.which(cxx) for cxx in ("g++", "clang++", "c++")),
    reason="torch.compile on the CPU needs a C++ compiler",
)
def test_compile_runs_the_steps_between_snapshots_and_matches_eager(data):
    cfg = tiny(steps=40, snapshots=(1, 20))
    eager = train(cfg, data)
    fast = train(Config(**{**cfg.__dict__, "compile": True}), data)

    # compiled once, at step 2, the first step that is not a snapshot
    assert eager.compile_seconds is None and fast.compile_seconds > 0
    assert [s["step"] for s in fast.snapshots] == [1, 20, 40]

    # step 1 is eager in both; later steps differ from eager only in the last bits
    assert fast.loss[0] == eager.loss[0]
    assert fast.snapshots[0] == eager.snapshots[0]
    np.testing.assert_allclose(fast.loss, eager.loss, rtol=0, atol=1e-5)
    np.testing.assert_allclose(
        fast.update_to_data, eager.update_to_data, rtol=0, atol=1e-4
    )
    acts = [a["std"] for a in fast.snapshots[-1]["activations"]]
    want = [a["std"] for a in eager.snapshots[-1]["activations"]]
    np.testing.assert_allclose(acts, want, rtol=1e-4)


def test_a_compiler_that_fails_is_one_clear_error(data, monkeypatch):
    from actdiag.errors import ActdiagError

    def broken(*args, **kwargs):
        def call(*a, **k):
            raise RuntimeError("no C++ compiler found\nlong trace here")

        return call

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.raises(ActdiagError, match="compile.*no C\\+\\+ compiler found"):
        train(tiny(steps=5, compile=True), data)
