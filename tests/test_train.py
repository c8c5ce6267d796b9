"""The training loop: divergence checks, threads and the lecture's step-1 table."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from actdiag.config import Config, load_config
from actdiag.data import load_dataset
from actdiag.train import train

WORDS = [
    "emma",
    "olivia",
    "ava",
    "isabella",
    "sophia",
    "mia",
    "charlotte",
    "amelia",
    "harper",
    "evelyn",
    "abigail",
    "emily",
    "ella",
    "elizabeth",
    "camila",
    "luna",
]


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


LECTURE = os.environ.get("ACTDIAG_LECTURE_NAMES")
TABLE = """\
layer 1 (tanh): mean -0.02, std 0.75, saturated: 20.25%
layer 3 (tanh): mean -0.00, std 0.69, saturated: 8.38%
layer 5 (tanh): mean +0.00, std 0.67, saturated: 6.62%
layer 7 (tanh): mean -0.01, std 0.66, saturated: 5.47%
layer 9 (tanh): mean -0.02, std 0.66, saturated: 6.12%
gradient of layer 1 (tanh): mean +0.000010, std 4.205588e-04
gradient of layer 3 (tanh): mean -0.000003, std 3.991179e-04
gradient of layer 5 (tanh): mean +0.000003, std 3.743020e-04
gradient of layer 7 (tanh): mean +0.000015, std 3.290473e-04
gradient of layer 9 (tanh): mean -0.000014, std 3.054035e-04
weight   (27, 10) | mean -0.000031 | std 1.365078e-03 | grad:data 1.364090e-03
weight  (30, 100) | mean -0.000049 | std 1.207430e-03 | grad:data 3.871660e-03
weight (100, 100) | mean +0.000016 | std 1.096730e-03 | grad:data 6.601988e-03
weight (100, 100) | mean -0.000010 | std 9.893572e-04 | grad:data 5.893091e-03
weight (100, 100) | mean -0.000011 | std 8.623432e-04 | grad:data 5.158124e-03
weight (100, 100) | mean -0.000004 | std 7.388576e-04 | grad:data 4.415211e-03
weight  (100, 27) | mean -0.000000 | std 2.364824e-02 | grad:data 2.328203e+00"""


def lecture_lines(snapshot: dict) -> list[str]:
    """The snapshot formatted as the lecture printed it."""
    lines = [
        f"layer {a['layer']} ({a['kind']}): mean {a['mean']:+.2f}, std "
        f"{a['std']:.2f}, saturated: {a['saturated']:.2f}%"
        for a in snapshot["activations"]
    ]
    lines += [
        f"gradient of layer {g['layer']} ({g['kind']}): mean {g['mean']:+f}, "
        f"std {g['std']:e}"
        for g in snapshot["gradients"]
    ]
    lines += [
        f"weight {str(tuple(w['shape'])):>10} | mean {w['mean']:+f} | std "
        f"{w['std']:e} | grad:data {w['grad_to_data']:e}"
        for w in snapshot["weights"]
    ]
    return lines


@pytest.mark.skipif(
    not LECTURE,
    reason="set ACTDIAG_LECTURE_NAMES to the lecture's "
    "names.txt to check the published step-1 table",
)
def test_step_one_matches_the_lecture_table_to_the_digit():
    cfg = load_config(None, [f"data={LECTURE}", "steps=1", "gain=5/3"])
    data = load_dataset(Path(LECTURE), cfg.context, cfg.split_seed)
    result = train(cfg, data)
    assert f"{result.loss[0]:.4f}" == "3.2962"
    assert lecture_lines(result.snapshots[0]) == TABLE.splitlines()
