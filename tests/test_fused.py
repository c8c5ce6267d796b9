"""FusedSGD against the lecture's loop and the per-parameter update:data formula."""

from __future__ import annotations

import math

import pytest
import torch

from actdiag import stats
from actdiag.config import Config
from actdiag.fused import FusedSGD
from actdiag.model import MLP, cross_entropy

VOCAB = 27


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: fastest for these tiny tensors, above all on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_model(batchnorm: bool) -> tuple[MLP, torch.Generator]:
    """A small lecture MLP and the generator that drew it."""
    cfg = Config(width=16, depth=2, batchnorm=batchnorm)
    g = torch.Generator().manual_seed(cfg.seed)
    return MLP(cfg, VOCAB, g), g


def batches(n: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`n` random (X, Y) minibatches of 32 examples."""
    g = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randint(0, VOCAB, (32, 3), generator=g),
            torch.randint(0, VOCAB, (32,), generator=g),
        )
        for _ in range(n)
    ]


def naive_ratios(lr: float, grads: list[torch.Tensor], params) -> torch.Tensor:
    """log10(std(lr * grad) / std(p)) one parameter at a time."""
    pairs = zip(grads, params, strict=True)
    return torch.stack([stats.update_to_data(lr, g, p.detach()) for g, p in pairs])


def assert_ratios_close(fused: torch.Tensor, naive: torch.Tensor) -> None:
    """Equal to float32 tolerance where finite; same NaN and +-inf elsewhere."""
    assert torch.equal(torch.isnan(fused), torch.isnan(naive)), (fused, naive)
    finite = torch.isfinite(naive)
    assert torch.equal(fused[~finite & ~naive.isnan()], naive[~finite & ~naive.isnan()])
    torch.testing.assert_close(fused[finite], naive[finite], rtol=0, atol=2e-6)


@pytest.mark.parametrize("batchnorm", [False, True])
def test_updates_bitwise_equal_to_the_lecture_loop(batchnorm):
    naive, _ = tiny_model(batchnorm)
    fused, _ = tiny_model(batchnorm)
    naive_params, fused_params = list(naive.parameters()), list(fused.parameters())
    sgd = FusedSGD(fused_params)
    for step, (X, Y) in enumerate(batches(300)):
        lr = 0.1 if step < 200 else 0.01

        # the lecture's loop
        loss = cross_entropy(naive(X), Y)
        for p in naive_params:
            p.grad = None
        loss.backward()
        for p in naive_params:
            p.data += -lr * p.grad

        # the fused one
        loss = cross_entropy(fused(X), Y)
        sgd.zero_grad()
        loss.backward()
        sgd.step(lr)
        if sgd.pending == sgd.window:
            sgd.drain()
    for a, b in zip(naive_params, fused_params, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("batchnorm", [False, True])
def test_ratios_match_the_formula_every_step(batchnorm):
    model, _ = tiny_model(batchnorm)
    params = list(model.parameters())
    sgd = FusedSGD(params, window=16)  # 50 steps: three full windows and a part
    expected, got = [], []
    for X, Y in batches(50, seed=1):
        loss = cross_entropy(model(X), Y)
        sgd.zero_grad()
        loss.backward()
        grads = [p.grad.clone() for p in params]
        sgd.step(0.1)
        expected.append(naive_ratios(0.1, grads, params))
        if sgd.pending == sgd.window:
            got.append(sgd.drain())
    got.append(sgd.drain())
    ratios = torch.cat(got)
    assert ratios.shape == (50, len(params)) and ratios.dtype == torch.float32
    assert_ratios_close(ratios, torch.stack(expected))


def test_a_full_window_must_be_drained():
    model, _ = tiny_model(False)
    sgd = FusedSGD(list(model.parameters()), window=2)
    sgd.step(0.1)
    sgd.step(0.1)
    with pytest.raises(RuntimeError, match="drain"):
        sgd.step(0.1)
    assert sgd.drain().shape == (2, len(sgd.params)) and sgd.pending == 0
    sgd.step(0.1)


def test_gradients_accumulate_into_the_flat_buffer():
    model, _ = tiny_model(False)
    params = list(model.parameters())
    sgd = FusedSGD(params)
    X, Y = batches(1)[0]
    expected = torch.autograd.grad(cross_entropy(model(X), Y), params)
    sgd.grad.fill_(7.0)
    sgd.zero_grad()
    cross_entropy(model(X), Y).backward()
    base, end = sgd.grad.data_ptr(), sgd.grad.data_ptr() + sgd.grad.numel() * 4
    for p, want in zip(params, expected, strict=True):
        assert base <= p.grad.data_ptr() < end
        assert torch.equal(p.grad, want)


def crafted_params() -> tuple[list[torch.nn.Parameter], list[torch.Tensor]]:
    """Parameters and gradients at and beyond the edges of the ratio."""
    g = torch.Generator().manual_seed(3)
    weights = [
        torch.randn(100, 100, generator=g),  # ordinary
        torch.full((30,), 0.5),  # zero spread after a zero update: 0/0
        torch.ones(100) + 1e-3 * torch.randn(100, generator=g),  # gamma-like
        torch.randn(7, generator=g),  # zero gradient: log10(0)
        torch.tensor([2.0]),  # one entry: no spread
        torch.randn(65, generator=g),  # one past a block boundary
        torch.randn(64, generator=g),  # NaN gradient: only its own ratio is NaN
    ]
    grads = [torch.randn(w.shape, generator=g) for w in weights]
    grads[1].zero_()
    grads[3].zero_()
    grads[6][5] = math.nan
    return [torch.nn.Parameter(w) for w in weights], grads


def test_ratios_at_the_edges():
    params, grads = crafted_params()
    sgd = FusedSGD(params)
    for p, g in zip(params, grads, strict=True):
        p.grad.copy_(g)
    sgd.step(0.1)
    (ratios,) = sgd.drain()
    with pytest.warns(UserWarning, match="degrees of freedom"):
        naive = naive_ratios(0.1, grads, params)
    assert_ratios_close(ratios, naive)
    assert ratios[1].isnan() and ratios[3] == -math.inf and ratios[4].isnan()
    assert ratios[6].isnan() and torch.isfinite(ratios[[0, 2, 5]]).all()


def test_constant_weight_with_a_real_update_is_infinite():
    weight = torch.nn.Parameter(torch.zeros(10))
    sgd = FusedSGD([weight])
    weight.grad.copy_(torch.arange(10.0))
    weight.data.copy_(torch.full((10,), 0.0))
    sgd.step(0.1)
    # the update has spread, so the weight after it has spread as well
    assert torch.isfinite(sgd.drain()).all()
    sgd.weight.zero_()
    sgd.update.copy_(torch.arange(len(sgd.update), dtype=torch.float32))
    sgd.update[10:] = 0
    sgd.record()
    assert sgd.drain()[0, 0] == math.inf
