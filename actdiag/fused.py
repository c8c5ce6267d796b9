"""Plain SGD and the update:data ratio of every parameter, in a fixed handful of ops.

The parameters and their gradients are moved into flat, block-padded buffers,
so one step's update is two tensor ops and the ratios of all parameters come out
of about a dozen more, whatever the number of parameters. Nothing here syncs
with the host: the ratios stay on the device. `stats.update_to_data` is the
slow, obviously correct version this is tested against.
"""

from __future__ import annotations

import math

import torch

BLOCK = 128  # floats per block; every parameter starts on a block boundary


class FusedSGD:
    """Owns the storage of `params` and their gradients; applies `p -= lr * p.grad`.

    The buffer is (2, blocks, BLOCK): row 0 holds each parameter's last update
    `-lr * grad`, row 1 the parameters themselves, each zero-padded to whole
    blocks (a block belongs to one parameter). Every parameter's `.data` and
    `.grad` become views of these buffers: clear gradients with `zero_grad`,
    never by setting `p.grad = None`.
    """

    def __init__(self, params: list[torch.Tensor], block: int = BLOCK):
        self.params = params
        device = params[0].device
        sizes = [p.numel() for p in params]
        blocks = [max(1, math.ceil(n / block)) for n in sizes]
        starts = [block * sum(blocks[:i]) for i in range(len(blocks))]
        total = sum(blocks)
        self.buffer = torch.zeros((2, total, block), device=device)
        self.update, self.weight = self.buffer.view(2, -1)  # (total * block,) each
        self.grad = torch.zeros(total * block, device=device)

        # every parameter and its gradient become views of the flat buffers
        with torch.no_grad():
            for p, start, n in zip(params, starts, sizes, strict=True):
                view = self.weight[start : start + n].view(p.shape)
                view.copy_(p.data)
                p.data = view
                p.grad = self.grad[start : start + n].view(p.shape)

        # which parameter owns each block, and which entries are padding
        owner = torch.repeat_interleave(torch.arange(len(params)), torch.tensor(blocks))
        mask = torch.zeros(total * block)
        for start, n in zip(starts, sizes, strict=True):
            mask[start : start + n] = 1
        self.owner = owner.to(device)  # (blocks,)
        self.mask = mask.view(total, block).to(device)  # (blocks, BLOCK)
        self.lengths = torch.tensor(blocks).expand(2, -1).contiguous().to(device)
        self.counts = torch.tensor(sizes, dtype=torch.float32, device=device)  # (n,)

        # scratch for the ratios, allocated once: the step then stays in cache
        self.dev = torch.empty_like(self.buffer)  # (2, blocks, BLOCK)
        self.block_sums = torch.empty((2, total), device=device)
        self.block_norms = torch.empty((2, total), device=device)

    def zero_grad(self) -> None:
        """Zero every gradient in place (backward then accumulates into them)."""
        self.grad.zero_()

    def step(self, lr: float, out: torch.Tensor | None = None) -> torch.Tensor:
        """Update every parameter in place and return its log10 update:data ratio.

        Rounds exactly as `p.data += -lr * p.grad` does: one multiply, one add.
        The buffers hold no autograd history, so no `no_grad` is needed.

        Returns:
            (n_params,) float32 log10(std(lr * grad) / std(p after the update)),
            NaN or +-inf where undefined, on the parameters' device; written
            into `out` when given.
        """
        torch.mul(self.grad, -lr, out=self.update)
        self.weight.add_(self.update)
        return self.ratios(out)

    def ratios(self, out: torch.Tensor | None = None) -> torch.Tensor:
        """log10(std(update) / std(weight)) of every parameter, from the buffer.

        Two-pass: per-parameter means first, then the sum of squared deviations;
        the (n - 1) of both stds cancels, so the ratio is sqrt(ss_update / ss_weight).
        """
        x = self.buffer  # (2, blocks, BLOCK)

        # per-parameter means, summed block by block, spread back over each block
        # NOTE: sum / n, not sum * (1 / n), so a constant tensor has exactly no spread
        sums = torch.sum(x, 2, out=self.block_sums)  # (2, blocks)
        means = self._per_param(sums) / self.counts  # (2, n)
        means = means.index_select(1, self.owner).unsqueeze(2)  # (2, blocks, 1)

        # deviations from the mean (padding stays 0), squared and summed
        # TODO: the deviations are written, then read back; a fused kernel would
        # save that pass, most of the ~10 % a plain-preset step spends in here
        dev = torch.addcmul(x, means, self.mask, value=-1, out=self.dev)
        norms = torch.linalg.vector_norm(dev, dim=2, out=self.block_norms)
        ss = self._per_param(norms.square_())  # (2, n)
        return torch.mul((ss[0] / ss[1]).log10(), 0.5, out=out)

    def _per_param(self, blocks: torch.Tensor) -> torch.Tensor:
        """Sum (2, blocks) block values into (2, n_params) per-parameter totals.

        A NaN stays within its parameter (a matmul with a 0/1 matrix would spread
        it); `unsafe` skips a check of `lengths` that would wait for the device.
        """
        return torch.segment_reduce(
            blocks, "sum", lengths=self.lengths, axis=1, unsafe=True
        )
