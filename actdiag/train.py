"""The training loop: plain SGD on the lecture's MLP, recording every diagnostic.

Training returns plain records (a RunResult); writing, plotting and printing
happen elsewhere.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch

from actdiag import compiled, stats
from actdiag.config import Config
from actdiag.data import Dataset
from actdiag.errors import ActdiagError
from actdiag.fused import FusedSGD
from actdiag.model import KINDS, MLP, cross_entropy
from actdiag.probe import Probe

# called as progress(step, loss) every PROGRESS_EVERY steps and at the end
ProgressFn = Callable[[int, float], None]
PROGRESS_EVERY = 100
# steps between divergence checks on CUDA, where each check waits for the device
CHECK_EVERY = 100


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
    compile_seconds: float | None = None  # the first compiled step, compiling included

    @property
    def steps_done(self) -> int:
        """Optimization steps completed (updates applied)."""
        return len(self.loss)


def resolve_device(name: str) -> torch.device:
    """Turn cpu/cuda/auto into a device, with a clear error when CUDA is missing."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ActdiagError(
            "key 'device' is 'cuda' but torch sees no CUDA device; use cpu or auto"
        )
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
def split_loss(
    model: MLP, X: torch.Tensor, Y: torch.Tensor, device: torch.device
) -> float:
    """Loss over a whole split in evaluation mode (batchnorm uses running estimates)."""
    model.eval()
    try:
        return cross_entropy(model(X.to(device)), Y.to(device)).item()
    finally:
        model.train()


def train(
    cfg: Config,
    data: Dataset,
    progress: ProgressFn | None = None,
    check_every: int | None = None,
) -> RunResult:
    """Run `cfg.steps` SGD steps and record the statistics the config asks for.

    On the CPU a non-finite loss stops the run before its update. On CUDA the
    losses stay on the device and are checked every `check_every` steps
    (CHECK_EVERY by default), so no step waits for the device; a non-finite loss
    found there truncates every record at its step. Either way `diverged` holds
    the first step whose loss was not finite. Ctrl-C stops the run after the last
    completed step (recorded in `interrupted`).
    """
    device = resolve_device(cfg.device)
    if check_every is None:
        check_every = 1 if device.type == "cpu" else CHECK_EVERY
    tracing = compiled.tracing_autograd() if cfg.compile else nullcontext()
    with torch_threads(cfg.threads), tracing:
        return _train(cfg, data, device, progress, check_every)


def _train(
    cfg: Config,
    data: Dataset,
    device: torch.device,
    progress: ProgressFn | None,
    check_every: int,
) -> RunResult:
    """The step loop of `train`, on `device`, with the torch threads already set."""
    start = time.perf_counter()

    # one generator draws the weights, then the batches
    g = torch.Generator().manual_seed(cfg.seed)
    model = MLP(cfg, data.vocab_size, g).to(device)
    params = list(model.parameters())
    probe = Probe(model.watched_layers(), cfg.dead_threshold)
    sgd = FusedSGD(params)  # from here on, params live in its buffers
    fwd_bwd = compiled.compile_fwd_bwd(model, params) if cfg.compile else None
    Xtr, Ytr = (t.to(device) for t in data.splits["train"])
    pinned = device.type == "cuda"  # so each step's indices copy without a sync
    snapshot_steps = set(cfg.snapshot_steps())
    result = _empty_result(cfg, data, device, model)

    # per-step records: on CUDA they stay on the device until the end
    on_host = check_every == 1  # the loss is read every step anyway
    if on_host:
        losses = np.empty(cfg.steps, np.float32)
    else:
        losses = torch.empty(cfg.steps, device=device)
    ratios = torch.empty((cfg.steps, len(params)), device=device)
    done = checked = drained = 0
    try:
        for step in range(1, cfg.steps + 1):
            # minibatch, drawn on the CPU generator: every device sees the same batches
            ix = torch.randint(
                0, Xtr.shape[0], (cfg.batch_size,), generator=g, pin_memory=pinned
            )
            if pinned:
                ix = ix.to(device, non_blocking=True)
            Xb, Yb = Xtr[ix], Ytr[ix]  # (batch, context), (batch,)
            lr = cfg.lr_at(step)
            snapshot = step in snapshot_steps

            # forward and backward: eager on snapshot steps, where the probe watches
            if fwd_bwd is None or snapshot:
                with probe.attach() if snapshot else nullcontext():
                    loss = cross_entropy(model(Xb), Yb)
                    sgd.zero_grad()
                    loss.backward()
            elif result.compile_seconds is None:
                loss, result.compile_seconds = compiled.first_call(fwd_bwd, Xb, Yb)
            else:
                loss = fwd_bwd(Xb, Yb)

            # record the loss; on the CPU a non-finite one stops before the update
            if on_host:
                losses[step - 1] = value = loss.item()
                if not math.isfinite(value):
                    result.diverged = step
                    break
            else:
                losses[step - 1] = loss.detach()

            # update; the update:data ratios become records a window at a time
            sgd.step(lr)
            done = step
            if sgd.pending == sgd.window:
                sgd.drain(out=ratios[drained : drained + sgd.window])
                drained += sgd.window

            # batched divergence check: one host sync every `check_every` steps
            if not on_host and (
                step % check_every == 0 or step == cfg.steps or snapshot
            ):
                bad = _first_nonfinite(losses[checked:step])
                if bad is not None:
                    result.diverged = checked + bad + 1
                    break
                checked = step
            if snapshot:
                acts, grads = probe.records()
                result.snapshots.append(
                    {
                        "step": step,
                        "loss": loss.item(),
                        "lr": lr,
                        "activations": acts,
                        "gradients": grads,
                        "weights": weight_records(model),
                    }
                )
                result.saturation_maps.update(probe.saturation_maps(step))
            if progress and (step % PROGRESS_EVERY == 0 or step == cfg.steps):
                progress(step, loss.item())
    except KeyboardInterrupt:
        result.interrupted = done + 1
        if not on_host:
            bad = _first_nonfinite(losses[checked:done])
            if bad is not None:
                result.diverged = checked + bad + 1
    if sgd.pending:
        sgd.drain(out=ratios[drained : drained + sgd.pending])

    # move the series to the host once, and drop what a divergence left behind
    # NOTE: a diverged step itself is not kept: its loss was not finite
    if result.diverged is not None:
        done = result.diverged - 1
        result.snapshots = [s for s in result.snapshots if s["step"] <= done]
    result.loss = losses[:done] if on_host else losses[:done].cpu().numpy()
    result.update_to_data = _undefined_to_nan(ratios[:done].cpu().numpy())
    if done and result.diverged is None:
        Xva, Yva = data.splits["val"]
        if len(Xva):
            result.val_loss = _finite_or_none(split_loss(model, Xva, Yva, device))
    result.seconds = time.perf_counter() - start
    return result


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with `n` torch CPU threads, then restore the previous number."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _first_nonfinite(losses: torch.Tensor) -> int | None:
    """Index of the first non-finite entry of a (k,) tensor, or None (one host sync)."""
    finite = torch.isfinite(losses)
    if bool(finite.all()):
        return None
    return int((~finite).nonzero()[0, 0])


def _empty_result(
    cfg: Config, data: Dataset, device: torch.device, model: MLP
) -> RunResult:
    """A RunResult with the run's description and no records yet."""
    params = list(model.parameters())
    return RunResult(
        config=cfg,
        device=str(device),
        vocab_size=data.vocab_size,
        n_params=sum(p.numel() for p in params),
        layers=[
            {"layer": i, "kind": KINDS[type(m)]} for i, m in enumerate(model.layers)
        ],
        params=[
            {"param": i, "name": name, "shape": list(p.shape)}
            for i, (name, p) in enumerate(zip(model.param_names(), params, strict=True))
        ],
        loss=np.empty(0, np.float32),
        update_to_data=np.empty((0, len(params)), np.float32),
    )


def _undefined_to_nan(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float32, copy=True)
    a[~np.isfinite(a)] = np.nan
    return a


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None
