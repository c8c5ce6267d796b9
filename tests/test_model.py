"""The lecture's MLP: parameter counts, layer indices and the init scaling."""

import torch

from actdiag.config import Config
from actdiag.model import MLP, BatchNorm1d, Linear


def build(**kw):
    return MLP(Config(**kw), 27, torch.Generator().manual_seed(2147483647))


def test_parameter_counts_match_reference():
    assert sum(p.numel() for p in build().parameters()) == 46_497
    assert sum(p.numel() for p in build(batchnorm=True).parameters()) == 47_024


def test_watched_layers_are_the_lectures_indices():
    assert [i for i, _, _ in build().watched_layers()] == [1, 3, 5, 7, 9]
    assert [i for i, _, _ in build(tanh=False).watched_layers()] == [0, 1, 2, 3, 4]
    assert [k for _, k, _ in build(tanh=False).watched_layers()] == ["linear"] * 5


def test_init_draw_order_and_scaling():
    g = torch.Generator().manual_seed(7)
    emb = torch.randn((27, 10), generator=g)
    w0 = torch.randn((30, 100), generator=g) / 30**0.5
    model = MLP(Config(gain=2.0, seed=7), 27, torch.Generator().manual_seed(7))
    assert torch.equal(model.embedding.data, emb)
    assert torch.allclose(model.layers[0].weight.data, w0 * 2.0)


def test_output_block_is_made_less_confident():
    plain = build(gain=1.0)
    scaled = build(gain=1.0, last_layer_scale=0.5)
    assert torch.allclose(scaled.layers[-1].weight, plain.layers[-1].weight * 5)
    bn = build(batchnorm=True, gain=3.0)
    assert isinstance(bn.layers[-1], BatchNorm1d)
    assert torch.allclose(bn.layers[-1].gamma, torch.full((27,), 0.1))
    # with batchnorm the output Linear takes the gain like every other one
    assert isinstance(bn.layers[-2], Linear) and bn.layers[-2].bias is None


def test_batchnorm_matches_a_by_hand_version():
    bn = BatchNorm1d(4)
    x = torch.randn((8, 4), generator=torch.Generator().manual_seed(3))
    out = bn(x)
    mean, var = x.mean(0), x.var(0)
    assert torch.allclose(out, (x - mean) / torch.sqrt(var + 1e-5), atol=1e-6)
    assert torch.allclose(bn.running_mean, 0.1 * mean)
    assert torch.allclose(bn.running_var, 0.9 + 0.1 * var)
