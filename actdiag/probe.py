"""Hooks that watch chosen modules of any `torch.nn.Module` tree for one step.

The probe records each watched module's output on the forward pass and the
gradient of that output on the backward pass, summarised at once into CPU
numbers so nothing keeps the autograd graph alive. For tanh layers it also
keeps a small boolean map of which units saturate on which examples, so dead
units (saturated on every example) can be found and pictured.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from actdiag import stats


class Probe:
    """Watches (layer index, kind, module) triples; attach it around one step."""

    def __init__(
        self,
        watched: list[tuple[int, str, nn.Module]],
        dead_threshold: float = stats.DEAD,
    ):
        self.watched = watched
        self.dead_threshold = dead_threshold
        self.activations: dict[int, dict] = {}
        self.gradients: dict[int, dict] = {}
        self.maps: dict[int, np.ndarray] = {}  # (batch, units) bool, tanh layers only

    @contextmanager
    def attach(self) -> Iterator[Probe]:
        """Register the hooks for the duration of the block; always remove them."""
        self.activations, self.gradients, self.maps = {}, {}, {}
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
            dead = None
            if kind == "tanh":
                saturated = stats.saturation_map(output, self.dead_threshold)
                self.maps[index] = saturated.cpu().numpy()
                dead = stats.dead_units(saturated)
            self.activations[index]["dead_units"] = dead
            self.activations[index]["units"] = output.shape[-1]
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

    def saturation_maps(self, step: int) -> dict[str, np.ndarray]:
        """The last attached step's maps, keyed `step<step>_layer<index>`."""
        return {f"step{step}_layer{i}": self.maps[i] for i in sorted(self.maps)}
