"""The lecture's deep character MLP, built from small layers that keep its math.

Layers are plain `torch.nn.Module`s so a probe can watch them through hooks;
nothing in here records statistics.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from actdiag.config import Config


class Linear(nn.Module):
    """`x @ weight + bias` with weight stored as (fan_in, fan_out)."""

    def __init__(
        self,
        fan_in: int,
        fan_out: int,
        bias: bool,
        g: torch.Generator,
        fan_in_scaling: bool = True,
    ):
        super().__init__()
        weight = torch.randn((fan_in, fan_out), generator=g)
        if fan_in_scaling:
            weight = weight / fan_in**0.5
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.zeros(fan_out)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # NOTE: a separate add (not addmm) keeps the lecture's rounding
        out = x @ self.weight  # (batch, fan_out)
        if self.bias is not None:
            out = out + self.bias
        return out


class BatchNorm1d(nn.Module):
    """Batchnorm as taught: batch mean, unbiased batch variance, running estimates."""

    def __init__(self, dim: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.gamma = nn.Parameter(torch.ones(dim))
        self.beta = nn.Parameter(torch.zeros(dim))
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("running_var", torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            mean = x.mean(0, keepdim=True)  # (1, dim)
            var = x.var(0, keepdim=True)  # unbiased, as torch defaults
        else:
            mean, var = self.running_mean, self.running_var
        xhat = (x - mean) / torch.sqrt(var + self.eps)
        out = self.gamma * xhat + self.beta

        # track the statistics used at evaluation
        if self.training:
            with torch.no_grad():
                m = self.momentum
                self.running_mean.copy_(
                    (1 - m) * self.running_mean + m * mean.squeeze(0)
                )
                self.running_var.copy_((1 - m) * self.running_var + m * var.squeeze(0))
        return out


class Tanh(nn.Module):
    """Elementwise tanh."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)


KINDS = {Linear: "linear", BatchNorm1d: "batchnorm", Tanh: "tanh"}


class MLP(nn.Module):
    """Embedding table, then one flat list of layers ending in the output block."""

    def __init__(self, cfg: Config, vocab_size: int, g: torch.Generator):
        super().__init__()
        self.context = cfg.context
        self.embedding = nn.Parameter(
            torch.randn((vocab_size, cfg.embedding), generator=g)
        )

        # hidden blocks, then the output block, in the lecture's draw order
        layers: list[nn.Module] = []
        fan_in = cfg.context * cfg.embedding
        sizes = [cfg.width] * cfg.depth + [vocab_size]
        for i, fan_out in enumerate(sizes):
            last = i == len(sizes) - 1
            layers.append(
                Linear(fan_in, fan_out, not cfg.batchnorm, g, cfg.fan_in_scaling)
            )
            if cfg.batchnorm:
                layers.append(BatchNorm1d(fan_out))
            if cfg.tanh and not last:
                layers.append(Tanh())
            fan_in = fan_out
        self.layers = nn.ModuleList(layers)
        self._scale_init(cfg)

    @torch.no_grad()
    def _scale_init(self, cfg: Config) -> None:
        # the output block starts less confident; every other Linear takes the gain
        last = self.layers[-1]
        if isinstance(last, BatchNorm1d):
            last.gamma *= cfg.last_layer_scale
        else:
            last.weight *= cfg.last_layer_scale
        for layer in list(self.layers)[:-1]:
            if isinstance(layer, Linear):
                layer.weight *= cfg.gain

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Map (batch, context) character indices to (batch, vocab) logits."""
        emb = self.embedding[X]  # (batch, context, embedding)
        x = emb.view(emb.shape[0], -1)  # (batch, context * embedding)
        for layer in self.layers:
            x = layer(x)
        return x

    def watched_layers(self) -> list[tuple[int, str, nn.Module]]:
        """(index, kind, module) of the layers whose outputs the diagnostics watch.

        The tanh layers when there are any; otherwise every Linear but the output one.
        """
        layers = list(self.layers)
        tanhs = [(i, "tanh", m) for i, m in enumerate(layers) if isinstance(m, Tanh)]
        if tanhs:
            return tanhs
        linears = [
            (i, "linear", m) for i, m in enumerate(layers) if isinstance(m, Linear)
        ]
        return linears[:-1]

    def param_names(self) -> list[str]:
        """A readable name per parameter, in `parameters()` order."""
        return [
            name.replace("layers.", "layer ") for name, _ in self.named_parameters()
        ]


def cross_entropy(logits: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of (batch, vocab) logits against (batch,) targets."""
    return F.cross_entropy(logits, Y)
