"""Hooks that watch chosen modules of any `torch.nn.Module` tree for one step.

The probe records each watched module's output on the forward pass and the
gradient of that output on the backward pass, summarised at once into CPU
numbers so nothing keeps the autograd graph alive.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from actdiag import stats


class Probe:
    """Watches (layer index, kind, module) triples; attach it around one step."""

    def __init__(self, watched: list[tuple[int, str, nn.Module]]):
        self.watched = watched
        self.activations: dict[int, dict] = {}
        self.gradients: dict[int, dict] = {}

    @contextmanager
    def attach(self) -> Iterator["Probe"]:
        """Register the hooks for the duration of the block; always remove them."""
        self.activations, self.gradients = {}, {}
        handles = [
            module.register_forward_hook(self._forward_hook(index, kind))
            for index, kind, module in self.watched
        ]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def _forward_hook(self, index: int, kind: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            self.activations[index] = {"layer": index, "kind": kind}
            self.activations[index].update(stats.summarize_activation(output, kind))
            if output.requires_grad:
                output.register_hook(self._grad_hook(index, kind))

        return hook

    def _grad_hook(self, index: int, kind: str):
        def hook(grad: torch.Tensor) -> None:
            self.gradients[index] = {"layer": index, "kind": kind}
            self.gradients[index].update(stats.summarize_gradient(grad))

        return hook

    def records(self) -> tuple[list[dict], list[dict]]:
        """Activation and gradient records of the last attached step, in layer order."""
        acts = [self.activations[i] for i in sorted(self.activations)]
        grads = [self.gradients[i] for i in sorted(self.gradients)]
        return acts, grads
