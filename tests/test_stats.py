"""Each statistic against a slow, obviously correct numpy or loop version."""

import math

import numpy as np
import pytest
import torch

from actdiag import stats


def slow_std(values):
    values = [float(v) for v in values]
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


@pytest.fixture
def t():
    return torch.randn((32, 100), generator=torch.Generator().manual_seed(0)) * 1.5


def test_mean_std_match_a_loop(t):
    mean, std = stats.mean_std(t)
    flat = t.flatten().tolist()
    assert mean == pytest.approx(sum(flat) / len(flat), abs=1e-6)
    assert std == pytest.approx(slow_std(flat), rel=1e-5)


def test_mean_std_undefined_is_none():
    assert stats.mean_std(torch.tensor([1.0, float("nan")])) == (None, None)
    assert stats.mean_std(torch.tensor([2.0]))[1] is None


def test_saturated_counts_entries_above_threshold(t):
    a = torch.tanh(t)
    count = sum(1 for v in a.flatten().tolist() if abs(v) > 0.97)
    assert stats.saturated(a) == pytest.approx(100 * count / a.numel(), abs=1e-4)
    edge = torch.tensor([0.97, -0.97, 0.9701, -0.98])
    assert stats.saturated(edge) == pytest.approx(50.0)


def test_histogram_matches_numpy_density(t):
    hist = stats.histogram(t)
    density, edges = np.histogram(t.numpy(), bins=100, density=True)
    assert len(hist["density"]) == 100 and len(hist["edges"]) == 101
    np.testing.assert_allclose(hist["edges"], edges, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(hist["density"], density, rtol=1e-3, atol=1e-4)
    width = np.diff(hist["edges"])
    assert float(np.sum(np.asarray(hist["density"]) * width)) == pytest.approx(
        1.0, rel=1e-4
    )


def test_histogram_drops_non_finite_and_empty():
    hist = stats.histogram(torch.tensor([0.0, 1.0, float("inf"), float("nan")]))
    assert sum(hist["density"]) > 0
    assert hist == stats.histogram(torch.tensor([0.0, 1.0]))
    assert stats.histogram(torch.tensor([float("nan")])) is None
    assert stats.histogram(torch.tensor([-float("inf"), float("inf")])) is None
    assert stats.histogram(torch.empty(0)) is None


@pytest.mark.parametrize("kind", ["normal", "constant", "one"])
def test_histogram_is_torch_histogram_exactly(kind):
    g = torch.Generator().manual_seed(5)
    t = {
        "normal": torch.randn((32, 100), generator=g),
        "constant": torch.full((7, 3), 0.3),
        "one": torch.tensor([2.5]),
    }[kind]
    density, edges = torch.histogram(t.flatten(), bins=stats.BINS, density=True)
    hist = stats.histogram(t)
    assert hist == {"edges": edges.tolist(), "density": density.tolist()}


def test_grad_to_data_is_ratio_of_stds(t):
    w = torch.randn((30, 100), generator=torch.Generator().manual_seed(1))
    g = t[:30] * 1e-3
    value, reason = stats.grad_to_data(g, w)
    expected = slow_std(g.flatten().tolist()) / slow_std(w.flatten().tolist())
    assert reason is None
    assert value == pytest.approx(expected, rel=1e-5)


def test_grad_to_data_zero_spread_weight_is_null_with_reason():
    value, reason = stats.grad_to_data(torch.randn(4, 4), torch.ones(4, 4))
    assert value is None and "zero spread" in reason


def test_update_to_data_matches_formula(t):
    p = torch.nn.Parameter(
        torch.randn((32, 100), generator=torch.Generator().manual_seed(2))
    )
    p.grad = t.clone()
    got = stats.update_to_data_all(0.1, [p]).item()
    expected = math.log10(
        slow_std((0.1 * t).flatten().tolist()) / slow_std(p.flatten().tolist())
    )
    assert got == pytest.approx(expected, abs=1e-5)


def test_summaries_have_the_documented_keys(t):
    a = stats.summarize_activation(torch.tanh(t), "tanh")
    assert set(a) == {"mean", "std", "saturated", "hist"}
    assert stats.summarize_activation(t, "linear")["saturated"] is None
    w = stats.summarize_weight(torch.ones(3, 3), torch.randn(3, 3))
    assert w["grad_to_data"] is None and "reason" in w
