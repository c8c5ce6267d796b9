"""The forward and backward pass as one `torch.compile` graph, for long runs.

Only steps between snapshots use it: forward hooks do not fire inside a
compiled call, so snapshot steps stay eager and the probe sees everything. The
update and the update:data ratios stay eager too (FusedSGD), so given the same
gradients they are bitwise the eager ones. The gradients themselves differ from
eager in the last bits (inductor's own tanh and reduction order), so a compiled
run drifts from an eager one by about 1e-6 over a thousand steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from actdiag.errors import ActdiagError
from actdiag.model import MLP, cross_entropy

FwdBwd = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def compile_fwd_bwd(model: MLP, params: list[torch.Tensor]) -> FwdBwd:
    """A compiled `(X, Y) -> loss` that also writes every gradient into `p.grad`.

    Build it after FusedSGD has made each `p.grad` a view of its flat buffer:
    the gradients are copied into those views, which replaces zero_grad and
    accumulation. The first call compiles (seconds); later calls reuse the graph.
    """
    grads = [p.grad for p in params]

    def fwd_bwd(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        loss = cross_entropy(model(X), Y)
        for view, grad in zip(grads, torch.autograd.grad(loss, params), strict=True):
            view.copy_(grad)
        return loss.detach()

    # NOTE: a fresh compiler state per run, so runs in one process never reach
    # dynamo's limit of recompiles per function (each run's model is new)
    torch.compiler.reset()
    return torch.compile(fwd_bwd, fullgraph=True, dynamic=False)


@contextmanager
def tracing_autograd() -> Iterator[None]:
    """Let dynamo trace `torch.autograd.grad` into the graph (set once per run)."""
    import torch._dynamo

    with torch._dynamo.config.patch(trace_autograd_ops=True):
        yield


def first_call(fwd_bwd: FwdBwd, X: torch.Tensor, Y: torch.Tensor):
    """Call `fwd_bwd` the first time, when it compiles: (loss, seconds it took).

    A compiler that cannot run here (no C++ compiler, no triton on CUDA) becomes
    one clear error instead of a traceback.
    """
    start = time.perf_counter()
    try:
        loss = fwd_bwd(X, Y)
    except Exception as e:  # torch raises many kinds here
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ActdiagError(
            f"key 'compile' is on but torch.compile failed: {first[:200]}; "
            "set compile: off"
        ) from e
    return loss, time.perf_counter() - start
