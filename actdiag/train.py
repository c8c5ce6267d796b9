"""The training loop: plain SGD on the lecture's MLP, recording every diagnostic.

Training returns plain records (a RunResult); writing, plotting and printing
happen elsewhere.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from actdiag import stats
from actdiag.config import Config
from actdiag.data import Dataset
from actdiag.errors import ActdiagError
from actdiag.model import MLP, cross_entropy
from actdiag.probe import Probe

# called as progress(step, loss) every PROGRESS_EVERY steps and at the end
ProgressFn = Callable[[int, float], None]
PROGRESS_EVERY = 100


@dataclass
class RunResult:
    """Everything one run recorded, as plain numbers and numpy arrays."""

    config: Config
    device: str
    vocab_size: int
    n_params: int
    layers: list[dict]  # {"layer", "kind"} of every layer in the flat list
    params: list[dict]  # {"param", "name", "shape"} in parameters() order
    loss: np.ndarray  # (steps_done,) float32 training loss per step
    update_to_data: np.ndarray  # (steps_done, n_params) float32 log10 ratios
    snapshots: list[dict] = field(default_factory=list)
    # (batch, units) bool |t| > dead_threshold, keyed step<k>_layer<i>
    saturation_maps: dict[str, np.ndarray] = field(default_factory=dict)
    diverged: int | None = None  # first step whose loss was not finite
    interrupted: int | None = None  # step at which Ctrl-C arrived
    val_loss: float | None = None
    seconds: float = 0.0

    @property
    def steps_done(self) -> int:
        """Optimization steps completed (updates applied)."""
        return len(self.loss)


def resolve_device(name: str) -> torch.device:
    """Turn cpu/cuda/auto into a device, with a clear error when CUDA is missing."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ActdiagError("key 'device' is 'cuda' but torch sees no CUDA device; use cpu or auto")
    return torch.device(name)


def weight_records(model: MLP) -> list[dict]:
    """Statistics of every 2-D parameter's gradient, against the weight after its update."""
    records = []
    for index, p in enumerate(model.parameters()):
        if p.ndim != 2:
            continue
        record = {"param": index, "shape": list(p.shape)}
        record.update(stats.summarize_weight(p.data, p.grad))
        records.append(record)
    return records


@torch.no_grad()
def split_loss(model: MLP, X: torch.Tensor, Y: torch.Tensor, device: torch.device) -> float:
    """Loss over a whole split in evaluation mode (batchnorm uses running estimates)."""
    model.eval()
    try:
        return cross_entropy(model(X.to(device)), Y.to(device)).item()
    finally:
        model.train()


def train(cfg: Config, data: Dataset, progress: ProgressFn | None = None) -> RunResult:
    """Run `cfg.steps` SGD steps and record the statistics the config asks for.

    A non-finite loss stops the run before its update (recorded in `diverged`);
    Ctrl-C stops it after the last completed step (recorded in `interrupted`).
    """
    device = resolve_device(cfg.device)
    start = time.perf_counter()

    # one generator draws the weights, then the batches
    g = torch.Generator().manual_seed(cfg.seed)
    model = MLP(cfg, data.vocab_size, g).to(device)
    params = list(model.parameters())
    probe = Probe(model.watched_layers(), cfg.dead_threshold)
    Xtr, Ytr = data.splits["train"]
    snapshot_steps = set(cfg.snapshot_steps())

    # per-step records stay on the device until the end
    losses = torch.empty(cfg.steps, device=device)
    ratios = torch.empty((cfg.steps, len(params)), device=device)
    result = RunResult(
        config=cfg,
        device=str(device),
        vocab_size=data.vocab_size,
        n_params=sum(p.numel() for p in params),
        layers=[{"layer": i, "kind": k} for i, k in enumerate(_kinds(model))],
        params=[
            {"param": i, "name": name, "shape": list(p.shape)}
            for i, (name, p) in enumerate(zip(model.param_names(), params))
        ],
        loss=np.empty(0, np.float32),
        update_to_data=np.empty((0, len(params)), np.float32),
    )

    done = 0
    try:
        for step in range(1, cfg.steps + 1):
            # minibatch, drawn on the CPU generator so every device sees the same batches
            ix = torch.randint(0, Xtr.shape[0], (cfg.batch_size,), generator=g)
            Xb, Yb = Xtr[ix].to(device), Ytr[ix].to(device)
            lr = cfg.lr_at(step)
            snapshot = step in snapshot_steps

            # forward and backward, watched by the probe on snapshot steps
            with probe.attach() if snapshot else nullcontext():
                loss = cross_entropy(model(Xb), Yb)
                if not math.isfinite(loss.item()):
                    result.diverged = step
                    break
                for p in params:
                    p.grad = None
                loss.backward()

            # update, then record the update:data ratio of every parameter
            with torch.no_grad():
                for p in params:
                    p.data += -lr * p.grad
                ratios[step - 1] = stats.update_to_data_all(lr, params)
                losses[step - 1] = loss.detach()
            done = step

            if snapshot:
                acts, grads = probe.records()
                result.snapshots.append(
                    {"step": step, "loss": loss.item(), "lr": lr, "activations": acts,
                     "gradients": grads, "weights": weight_records(model)}
                )
                result.saturation_maps.update(probe.saturation_maps(step))
            if progress and (step % PROGRESS_EVERY == 0 or step == cfg.steps):
                progress(step, loss.item())
    except KeyboardInterrupt:
        result.interrupted = done + 1

    # move the series to the host once
    result.loss = losses[:done].cpu().numpy()
    result.update_to_data = _undefined_to_nan(ratios[:done].cpu().numpy())
    if done and result.diverged is None:
        Xva, Yva = data.splits["val"]
        if len(Xva):
            result.val_loss = _finite_or_none(split_loss(model, Xva, Yva, device))
    result.seconds = time.perf_counter() - start
    return result


def _kinds(model: MLP) -> list[str]:
    from actdiag.model import KINDS

    return [KINDS[type(m)] for m in model.layers]


def _undefined_to_nan(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float32, copy=True)
    a[~np.isfinite(a)] = np.nan
    return a


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None
