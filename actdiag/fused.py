"""Plain SGD and the update:data ratio of every parameter, in a fixed handful of ops.

The update and each weight are copied into one padded buffer, so the ratios of
all parameters come out of about a dozen tensor ops instead of five per
parameter. Nothing here syncs with the host: the ratios stay on the device.
`stats.update_to_data` is the slow, obviously correct version it is tested
against.
"""

from __future__ import annotations

import math

import torch

BLOCK = 64  # floats per block; each parameter starts on a block boundary


class FusedUpdate:
    """Applies `p -= lr * p.grad` to every parameter and measures update:data.

    The buffer is (2, blocks, BLOCK): row 0 holds each parameter's update
    `-lr * grad`, row 1 the parameter after the update; both zero-padded to
    whole blocks. A block belongs to exactly one parameter.
    """

    def __init__(self, params: list[torch.Tensor], block: int = BLOCK):
        self.params = params
        device = params[0].device
        sizes = [p.numel() for p in params]
        blocks = [max(1, math.ceil(n / block)) for n in sizes]
        total = sum(blocks)
        self.buffer = torch.zeros((2, total, block), device=device)

        # views of the buffer, one per parameter, shaped like it
        flat = self.buffer.view(2, -1)
        self.updates, self.weights = [], []
        start = 0
        for p, n, b in zip(params, sizes, blocks):
            self.updates.append(flat[0, start : start + n].view(p.shape))
            self.weights.append(flat[1, start : start + n].view(p.shape))
            start += b * block

        # which parameter owns each block, and which entries are padding
        owner = torch.repeat_interleave(torch.arange(len(params)), torch.tensor(blocks))
        mask = torch.zeros(total * block)
        start = 0
        for n, b in zip(sizes, blocks):
            mask[start : start + n] = 1
            start += b * block
        self.owner = owner.to(device)  # (blocks,)
        self.mask = mask.view(total, block).to(device)  # (blocks, BLOCK)
        self.lengths = torch.tensor(blocks).expand(2, -1).contiguous().to(device)
        self.counts = torch.tensor(sizes, dtype=torch.float64, device=device)  # (n,)

    @torch.no_grad()
    def apply(self, lr: float) -> torch.Tensor:
        """Update every parameter in place and return its log10 update:data ratio.

        Rounds exactly as `p.data += -lr * p.grad` does (one multiply, one add).

        Returns:
            (n_params,) float32 log10(std(lr * grad) / std(p after the update)),
            NaN or +-inf where undefined, on the parameters' device.
        """
        grads = [p.grad for p in self.params]
        torch._foreach_copy_(self.updates, grads)
        torch._foreach_mul_(self.updates, -lr)
        torch._foreach_add_(self.params, self.updates)
        torch._foreach_copy_(self.weights, self.params)
        return self.ratios()

    def ratios(self) -> torch.Tensor:
        """log10(std(update) / std(weight)) of every parameter, from the buffer.

        Two-pass: segment means first, then the sum of squared deviations; the
        (n - 1) of both stds cancels, so the ratio is sqrt(ss_update / ss_weight).
        """
        x = self.buffer  # (2, blocks, BLOCK)

        # per-parameter means, summed block by block
        sums = torch.segment_reduce(x.sum(2, dtype=torch.float64), "sum",
                                    lengths=self.lengths, axis=1)  # (2, n)
        means = (sums / self.counts).float()
        block_means = means.index_select(1, self.owner).unsqueeze(2)  # (2, blocks, 1)

        # squared deviations, padding masked out, summed per parameter
        dev = torch.addcmul(x, block_means, self.mask, value=-1)
        ss = torch.linalg.vector_norm(dev, dim=2, dtype=torch.float64).square()
        ss = torch.segment_reduce(ss, "sum", lengths=self.lengths, axis=1)  # (2, n)
        return (0.5 * (ss[0] / ss[1]).log10()).float()
