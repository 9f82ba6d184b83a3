"""``torch.distributed`` for misalignlab: joining a ``torchrun`` job, collectives that carry
gradients, global batch norm, and the rank helpers the labs use to write from rank 0 only.

What it does: :func:`init_distributed` reads torchrun's environment (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``) and joins the group (gloo on CPU, nccl on CUDA);
:func:`all_gather_with_grad` concatenates every rank's rows so a contrastive loss sees the global
batch's negatives; :class:`GlobalBatchNorm` normalises with the global batch's statistics.
What it does not do: launch processes (``torchrun`` does) or decide what to shard (callers do).

Gradient bookkeeping (why the numbers equal a single process on the global batch): every rank ``r``
computes a loss ``L_r`` from its own rows against the gathered columns, scaled so that
``Σ_r L_r = W · L`` (``L`` the global-batch loss, ``W`` ranks). The gather's backward *sums* the
gradients that all ranks' losses send to each rank's rows, so rank ``r``'s parameter gradient is
its share of ``∂(Σ L_r)/∂θ``; DDP then averages over ranks, giving ``(1/W) ∂(W · L)/∂θ = ∂L/∂θ``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass(frozen=True)
class Dist:
    """Where this process sits in a job: ``rank`` of ``world`` processes (``world == 1``: alone)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only rank that writes run folders and checkpoints."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def shard(self, rows: Tensor) -> Tensor:
        """This rank's contiguous block of a global batch's rows (rank order = global order)."""
        if not self.active:
            return rows
        n = rows.shape[0]
        if n % self.world:
            raise ValueError(f"global batch of {n} rows does not split evenly over {self.world} ranks")
        size = n // self.world
        return rows[self.rank * size : (self.rank + 1) * size]

    def rows(self, local: int) -> slice:
        """Where this rank's ``local`` rows sit in the gathered global batch."""
        return slice(self.rank * local, (self.rank + 1) * local)


LOCAL = Dist()


def launched_by_torchrun() -> bool:
    """True when the environment describes a job of more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


_alone_depth = 0  # > 0 inside `alone()`


@contextmanager
def alone() -> Iterator[None]:
    """Within the block :func:`current` is ``LOCAL``: the work is this rank's own and nothing is
    exchanged (e.g. one diagnose fold model, trained whole on one rank while others train theirs)."""
    global _alone_depth
    _alone_depth += 1
    try:
        yield
    finally:
        _alone_depth -= 1


def current() -> Dist:
    """This process's :class:`Dist` (``LOCAL`` unless a process group is initialised, or inside :func:`alone`)."""
    if _alone_depth or not (dist.is_available() and dist.is_initialized()):
        return LOCAL
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def init_distributed(backend: str | None = None) -> Dist:
    """Join the torchrun job described by the environment; ``LOCAL`` when not launched by torchrun.

    ``backend`` None picks nccl when CUDA is available, else gloo. Idempotent. On CUDA each process
    uses ``cuda:LOCAL_RANK`` (set as the current device, so ``device="cuda"`` means that one).
    """
    if dist.is_available() and dist.is_initialized():
        return current()
    if not launched_by_torchrun():
        return LOCAL
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)  # env:// rendezvous: MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE
    return current()


def shutdown() -> None:
    """Leave the process group (if any), after a last barrier so no rank exits while others still talk."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    if current().active:
        dist.barrier()


class _AllGather(torch.autograd.Function):
    """Concatenate equal-sized (B, ...) blocks from every rank; backward sums and returns this rank's block."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        world, rank = dist.get_world_size(), dist.get_rank()
        ctx.block = (rank * x.shape[0], (rank + 1) * x.shape[0])
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)  # (W·B, ...)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # every rank's loss used every rank's rows: sum their gradients
        lo, hi = ctx.block
        return grad[lo:hi]


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; the same value is used on every rank, so the gradient is summed back too."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad


def all_gather_with_grad(x: Tensor, d: Dist | None = None) -> Tensor:
    """Every rank's ``x`` (B, ...) concatenated in rank order (W·B, ...); gradients flow back to each rank.

    ``d`` (default: :func:`current`) says whether to gather at all: ``LOCAL`` keeps ``x``, so a model
    trained on one rank of a larger job (a diagnose fold) does not talk to the others."""
    return _AllGather.apply(x) if (d or current()).active else x


def all_reduce_sum(x: Tensor, grad: bool = True, d: Dist | None = None) -> Tensor:
    """Sum of ``x`` over ranks (``x`` itself when alone); differentiable unless ``grad`` is False."""
    if not (d or current()).active:
        return x
    if grad:
        return _AllReduceSum.apply(x)
    out = x.detach().clone()
    dist.all_reduce(out)
    return out


def all_reduce_mean(x: Tensor, d: Dist | None = None) -> Tensor:
    """Mean of a detached tensor over ranks, for logging (no gradient)."""
    d = d or current()
    return all_reduce_sum(x, grad=False, d=d) / d.world if d.active else x


def shard_mean(per_pair: Tensor, weight: Tensor | None = None, d: Dist | None = None) -> Tensor:
    """This rank's share ``L_r`` of the (weighted) mean of ``per_pair`` (..., b) over the global batch.

    Scaled so that ``Σ_r L_r = W · mean`` (see the module docstring); alone, the plain weighted mean.
    Unweighted, equal shards make that the local mean; weighted, the weight total is all-reduced.
    """
    d = d or current()
    if weight is None:
        return per_pair.mean(dim=-1)
    weight = weight.to(per_pair.dtype)
    total = all_reduce_sum(weight.sum(dim=-1), grad=False, d=d)
    return d.world * (per_pair * weight).sum(dim=-1) / total.clamp_min(1e-12)


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training statistics are the *global* batch's, across ranks, on any device.

    ``torch.nn.SyncBatchNorm`` does this on GPUs only; this version (two all-reduces per call:
    the mean, then the centred second moment) also runs on CPU with gloo, which the tests use.
    Alone or in evaluation mode it is plain batch norm. Parameters and buffers keep the names of
    the layer it replaces, so state dicts are interchangeable.
    """

    dist: Dist = LOCAL  # the job whose ranks share statistics; set by :func:`convert_batchnorm`

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input (N, C, ...), got {input.dim()}-D")

    def forward(self, x: Tensor) -> Tensor:
        d = self.dist
        if not (self.training and d.active):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = (1, -1, *([1] * (x.dim() - 2)))
        n = x.numel() // x.shape[1] * d.world  # values per channel in the global batch
        mean = all_reduce_sum(x.sum(dims), d=d) / n  # (C,)
        centred = x - mean.view(shape)
        var = all_reduce_sum((centred * centred).sum(dims), d=d) / n  # (C,) biased, as used to normalise
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)  # type: ignore[union-attr]
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), m)  # type: ignore[union-attr]
                self.running_var.lerp_(var.detach() * n / max(n - 1, 1), m)  # type: ignore[union-attr]
        return y


def convert_batchnorm(module: nn.Module, d: Dist, device_type: str) -> nn.Module:
    """Replace every batch-norm layer below ``module`` (in place) by one sharing statistics over ``d``.

    CUDA gets ``torch.nn.SyncBatchNorm`` (fused kernels); other devices :class:`GlobalBatchNorm`.
    """
    if device_type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, GlobalBatchNorm):
            new = GlobalBatchNorm(
                child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats
            )
            new.load_state_dict(child.state_dict())
            device = next(iter(child.state_dict().values()), torch.empty(0)).device
            new.to(device).train(child.training)
            new.dist = d
            setattr(module, name, new)
        else:
            convert_batchnorm(child, d, device_type)
    return module
