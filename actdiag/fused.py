"""Plain SGD and the update:data ratio of every parameter, in a fixed handful of ops.

The parameters and their gradients are moved into flat, block-padded buffers,
so one step's update is two tensor ops, and the statistics the ratios need are
three passes over the buffer plus one tiny op, whatever the number of
parameters. Those statistics are kept per block for a window of steps and
turned into ratios a window at a time, so the small per-parameter ops run once
per window rather than once per step. Nothing here syncs with the host: the
ratios stay on the device. `stats.update_to_data` is the slow, obviously
correct version this is tested against.
"""

from __future__ import annotations

import math

import torch

BLOCK = 128  # floats per block; every parameter starts on a block boundary
WINDOW = 64  # steps whose block statistics are kept before they become ratios


class FusedSGD:
    """Owns the storage of `params` and their gradients; applies `p -= lr * p.grad`.

    The buffer is (2, blocks, BLOCK): row 0 holds each parameter's last update
    `-lr * grad`, row 1 the parameters themselves, each zero-padded to whole
    blocks (a block belongs to one parameter). Every parameter's `.data` and
    `.grad` become views of these buffers: clear gradients with `zero_grad`,
    never by setting `p.grad = None`.

    Each `step` records its block statistics; `drain` turns the recorded steps
    into ratios and must be called before `window` steps are pending.
    """

    def __init__(
        self, params: list[torch.Tensor], block: int = BLOCK, window: int = WINDOW
    ):
        self.params = params
        device = params[0].device
        sizes = [p.numel() for p in params]
        blocks = [math.ceil(n / block) for n in sizes]
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

        # which parameter owns each block, and how many real entries it holds
        owner = torch.repeat_interleave(torch.arange(len(params)), torch.tensor(blocks))
        filled = torch.full((total,), float(block))
        ends = torch.tensor(blocks).cumsum(0) - 1
        filled[ends] = torch.tensor(sizes, dtype=torch.float32) - block * (
            torch.tensor(blocks) - 1
        )
        self.owner = owner.to(device)  # (blocks,)
        self.filled = filled.to(device)  # (blocks,)
        self.mask = (torch.arange(block) < filled[:, None]).float().to(device)
        self.counts = torch.tensor(sizes, dtype=torch.float32, device=device)  # (n,)
        self.lengths = torch.tensor(blocks, device=device)  # (n,)

        # per-step scratch, allocated once: the step then stays in cache
        self.dev = torch.empty_like(self.buffer)  # (2, blocks, BLOCK)
        self.block_means = torch.empty((2, total, 1), device=device)
        self._block_means = self.block_means.squeeze(2)  # (2, blocks) view

        # block sums and norms of the last `window` steps, row views made once
        self.window = window
        self.sums = torch.empty((window, 2, total), device=device)
        self.norms = torch.empty((window, 2, total), device=device)
        self._rows = list(zip(self.sums.unbind(0), self.norms.unbind(0), strict=True))
        self.pending = 0  # steps recorded and not yet drained

    def zero_grad(self) -> None:
        """Zero every gradient in place (backward then accumulates into them)."""
        self.grad.zero_()

    def step(self, lr: float) -> None:
        """Update every parameter in place and record the statistics of its ratio.

        Rounds exactly as `p.data += -lr * p.grad` does: one multiply, one add.
        The buffers hold no autograd history, so no `no_grad` is needed.
        """
        if self.pending == self.window:
            raise RuntimeError(f"drain() the {self.window} recorded steps first")
        torch.mul(self.grad, -lr, out=self.update)
        self.weight.add_(self.update)
        self.record()

    def record(self) -> None:
        """Record the block statistics of the buffer as it stands, as one step.

        Per block: the sum, and the norm of the deviations from the block's own
        mean (padding excluded). `drain` combines blocks into parameters.
        """
        sums, norms = self._rows[self.pending]
        torch.sum(self.buffer, 2, out=sums)  # (2, blocks)
        torch.div(sums, self.filled, out=self._block_means)
        dev = torch.addcmul(
            self.buffer, self.block_means, self.mask, value=-1, out=self.dev
        )
        torch.linalg.vector_norm(dev, dim=2, out=norms)  # (2, blocks)
        self.pending += 1

    def drain(self, out: torch.Tensor | None = None) -> torch.Tensor:
        """log10(std(update) / std(weight)) of every parameter at every pending step.

        Blocks combine exactly (Chan's parallel variance): a parameter's sum of
        squared deviations is, over its blocks, the within-block sum plus
        `filled * (block mean - parameter mean)**2`. The (n - 1) of both stds
        cancels, so the ratio is sqrt(ss_update / ss_weight).

        Returns:
            (pending, n_params) float32, oldest step first, NaN or +-inf where
            undefined, on the parameters' device; written into `out` when given.
        """
        k = self.pending
        sums, norms = self.sums[:k], self.norms[:k]  # (k, 2, blocks)

        # parameter means, spread back over each parameter's blocks
        # NOTE: sum / n, not sum * (1 / n), so a constant tensor has exactly no spread
        means = self._per_param(sums) / self.counts  # (k, 2, n)
        spread = means.index_select(2, self.owner)  # (k, 2, blocks)

        # within-block plus between-block squared deviations, per parameter
        between = (sums / self.filled - spread).square_().mul_(self.filled)
        ss = self._per_param(norms.square().add_(between))  # (k, 2, n)
        logs = ss.log10_()
        ratios = torch.sub(logs[:, 0], logs[:, 1], out=out).mul_(0.5)
        self.pending = 0
        return ratios

    def _per_param(self, blocks: torch.Tensor) -> torch.Tensor:
        """Sum (k, 2, blocks) block values into (k, 2, n_params) parameter totals.

        A NaN stays within its parameter (a matmul with a 0/1 matrix would spread
        it); `unsafe` skips a check of `lengths` that would wait for the device.
        """
        lengths = self.lengths.expand(*blocks.shape[:2], -1).contiguous()
        return torch.segment_reduce(blocks, "sum", lengths=lengths, axis=2, unsafe=True)
