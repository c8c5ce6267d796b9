"""Small pure statistics of one tensor or a (weight, grad) pair; imports torch only.

Every function returns plain Python numbers (or None with a reason) so the
results can go straight into strict JSON. `std` is torch's default, unbiased.
"""

from __future__ import annotations

import math

import torch

SATURATION = 0.97  # |tanh| above this counts as saturated
BINS = 100
DEAD = 0.99  # |tanh| above this on every example of the batch: a dead unit


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def mean_std(t: torch.Tensor) -> tuple[float | None, float | None]:
    """Mean and unbiased std of every entry; None where undefined (NaN, inf, one entry)."""
    t = t.detach().float()
    mean = t.mean().item()
    std = t.std().item() if t.numel() > 1 else math.nan
    return _finite(mean), _finite(std)


def saturated(t: torch.Tensor, threshold: float = SATURATION) -> float:
    """Percent of entries with |t| > threshold. Healthy tanh layers: a few percent."""
    # NOTE: computed in float32 like the lecture, so ties round as it printed them
    return ((t.detach().abs() > threshold).float().mean() * 100).item()


def saturation_map(t: torch.Tensor, threshold: float = DEAD) -> torch.Tensor:
    """Which units saturate on which examples: |t| > threshold.

    Args: t (batch, units). Returns a (batch, units) bool tensor on t's device.
    """
    return t.detach().abs() > threshold


def dead_units(saturated: torch.Tensor) -> int:
    """Units saturated on every example of the batch; healthy layers have none.

    Args: saturated (batch, units) bool, as from `saturation_map`.
    """
    return int(saturated.all(dim=0).sum().item())


def histogram(t: torch.Tensor, bins: int = BINS) -> dict | None:
    """Density histogram over [min, max] like `torch.histogram(t, bins, density=True)`.

    Returns {"edges": bins + 1 floats, "density": bins floats}, or None when no
    entry is finite. Non-finite entries are left out. Runs on the CPU, since
    torch.histogram has no CUDA kernel.
    """
    t = t.detach().float().flatten().cpu()
    if t.numel() == 0:
        return None

    # min and max carry a NaN through, so finite ends mean every entry is finite
    lo, hi = torch.aminmax(t)
    if not (math.isfinite(lo.item()) and math.isfinite(hi.item())):
        t = t[torch.isfinite(t)]
        if t.numel() == 0:
            return None
        lo, hi = torch.aminmax(t)
    span = (lo.item(), hi.item())
    density, edges = torch.histogram(t, bins=bins, range=span, density=True)
    return {"edges": edges.tolist(), "density": density.tolist()}


def std_ratio(num: torch.Tensor, den: torch.Tensor) -> tuple[float | None, str | None]:
    """std(num) / std(den) in float32, or (None, reason) when it is undefined."""
    num, den = num.detach().float(), den.detach().float()
    if num.numel() < 2 or den.numel() < 2:
        return None, "a tensor with one entry has no spread"
    top, bottom = num.std(), den.std()
    value = (top / bottom).item()
    if math.isfinite(value):
        return value, None
    if not math.isfinite(top.item()) or not math.isfinite(bottom.item()):
        return None, "the gradient or weight holds NaN or infinity"
    return None, "the weight has zero spread"


def grad_to_data(
    grad: torch.Tensor, weight: torch.Tensor
) -> tuple[float | None, str | None]:
    """std(grad) / std(weight): how big a gradient is next to its weight.

    Around 1e-3 to 1e-2 is usual; a weight far above the others (the output layer
    at init) will be updated much faster than the rest.
    """
    return std_ratio(grad, weight)


def update_to_data(lr: float, grad: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """log10(std(lr * grad) / std(weight)) as a 0-d tensor on the weight's device.

    About -3 is the lecture's healthy guide; well below learns slowly, well above
    learns too fast. Undefined ratios come out as NaN or +-inf; callers record them.
    """
    return ((lr * grad).std() / weight.std()).log10()


def update_to_data_all(lr: float, params: list[torch.Tensor]) -> torch.Tensor:
    """update_to_data of every parameter as one (n_params,) tensor, with no host sync.

    Five small ops per parameter: the slow, obviously correct version of
    `fused.FusedSGD.drain`, which training uses and the tests check against it.
    """
    return torch.stack([update_to_data(lr, p.grad, p.data) for p in params])


def summarize_activation(t: torch.Tensor, kind: str) -> dict:
    """Mean, std, saturated percent (tanh only) and histogram of an activation."""
    mean, std = mean_std(t)
    sat = saturated(t) if kind == "tanh" else None
    return {"mean": mean, "std": std, "saturated": sat, "hist": histogram(t)}


def summarize_gradient(t: torch.Tensor) -> dict:
    """Mean, std and histogram of the gradient of an activation."""
    mean, std = mean_std(t)
    return {"mean": mean, "std": std, "hist": histogram(t)}


def summarize_weight(weight: torch.Tensor, grad: torch.Tensor) -> dict:
    """Mean and std of a weight's gradient, grad:data ratio and the gradient histogram."""
    mean, std = mean_std(grad)
    value, reason = grad_to_data(grad, weight)
    out = {"mean": mean, "std": std, "grad_to_data": value, "hist": histogram(grad)}
    if reason:
        out["reason"] = reason
    return out
