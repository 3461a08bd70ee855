"""Training over several processes with ``torch.distributed``, launched by ``torchrun`` (gloo on the CPU, NCCL on
GPUs), in the one training loop.

``--batch-size`` stays the global batch: every rank draws the same global order (same seed) and takes a contiguous
shard of each batch.  Each rank's loss is the mean over its shard; the gradients are scaled by the shard's share of
the global batch and summed over the ranks (one all-reduce of all gradients), so every rank takes the update that
one process would take on the whole batch, also when the shards differ in size.  Loss terms are averaged the same
way before they are checked and logged, so every rank agrees on a non-finite loss; a stop signal on any rank stops
all of them at the same update.  Rank 0 alone writes files.  Every rank compiles its circuits itself
(compilation is deterministic); :meth:`Distributed.same` checks that they agree before training starts.
"""

from __future__ import annotations

import atexit
import os
import sys
from datetime import timedelta
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..draws import device_generator
from ..errors import DataError
from ..exit_state import is_leaving_on_error, leaving_on_error


def _note_uncaught(hook):  # type: ignore[no-untyped-def]
    def excepthook(*args):  # type: ignore[no-untyped-def]
        leaving_on_error()
        hook(*args)
    return excepthook


def _leave() -> None:
    """Close this process's side of the group at exit (gloo aborts the interpreter when it is left open).  A process
    that ends normally first waits for the others (at most 5 minutes): a gloo rank that closes while a peer is still
    connected can abort with "terminate called without an active exception"."""
    if not dist.is_initialized():
        return
    if not is_leaving_on_error():  # a rank leaving on an error may leave peers blocked in a collective it never joins
        try:
            if dist.get_backend() == "gloo":
                dist.monitored_barrier(timeout=timedelta(minutes=5))
            else:
                dist.barrier()
        except RuntimeError:  # a peer left early; closing is all that is left to do
            pass
    dist.destroy_process_group()


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")  # this process's training device (NCCL's collectives live there)
    batch: int = 0  # the size of the global batch of the current update (set by the trainer)

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_environment(cls, device: torch.device) -> "Distributed":
        """The process group ``torchrun`` describes in ``WORLD_SIZE``/``RANK`` (started once; one process without),
        with this process's device: on GPUs, the one ``LOCAL_RANK`` names."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if device.type == "cuda" and "LOCAL_RANK" in os.environ:  # one GPU per process
            device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        if world_size <= 1:
            return cls(device=device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            atexit.register(_leave)
            sys.excepthook = _note_uncaught(sys.excepthook)
        return cls(dist.get_rank(), dist.get_world_size(), device)

    def own_generator(self, seed: int, shared: torch.Generator) -> torch.Generator:
        """The generator of draws that are this process's own (a replay buffer and its chains): ``shared`` in one
        process, one seeded by ``seed`` and the rank under ``torchrun``."""
        return device_generator(self.device, seed * 1000 + self.rank) if self.active else shared

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous part of a global batch (sizes differ by at most one)."""
        start, stop = self.rows(len(batch))
        return batch[start:stop]

    def rows(self, total: int | None = None) -> tuple[int, int]:
        """The rows ``[start, stop)`` of a global batch of ``total`` (default: the current one) that :meth:`shard`
        gives this rank."""
        total = self.batch if total is None else total
        return total * self.rank // self.world_size, total * (self.rank + 1) // self.world_size

    def block_rows(self, blocks: int, total: int | None = None) -> tuple[torch.Tensor, int]:
        """This rank's rows of ``blocks`` stacked copies of a global batch (e.g. the inputs of several network calls,
        call-major), as ``(indices, blocks * total)``."""
        total = self.batch if total is None else total
        start, stop = self.rows(total)
        index = torch.cat([torch.arange(b * total + start, b * total + stop) for b in range(blocks)])
        return index, blocks * total

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """``[world_size, *shape]``: every rank's ``tensor`` (of one shape on all ranks), differentiable in this
        rank's part only.  A term computed from it is the same on every rank, so each rank's copy sends the gradient
        of the whole term to its own part; weighting that term by ``1 / share`` (``global / local``) in the rank's
        loss makes the trainer's share-weighted sum of gradients count it once."""
        if not self.active:
            return tensor.unsqueeze(0)
        return _Gather.apply(tensor, self.rank, self.world_size)

    def average(self, values: dict[str, float], share: float) -> dict[str, float]:
        """Loss terms of the shards, weighted by each shard's ``share`` of the global batch and summed."""
        if not self.active:
            return values
        names = sorted(values)
        total = torch.tensor([values[n] * share for n in names], dtype=torch.float64, device=self.device)
        dist.all_reduce(total)
        return dict(zip(names, total.tolist()))

    def reduce_gradients(self, parameters: list[torch.nn.Parameter], share: float) -> None:
        """Each gradient times this shard's ``share``, summed over the ranks, in one all-reduce."""
        if not self.active:
            return
        grads = [p.grad for p in parameters if p.grad is not None]
        if len(grads) != len(parameters):  # every rank must send the same tensors: absent gradients become zeros
            for p in parameters:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
            grads = [p.grad for p in parameters]
        flat = torch.cat([g.reshape(-1) for g in grads]).mul_(share)
        dist.all_reduce(flat)
        offset = 0
        for g in grads:
            g.copy_(flat[offset: offset + g.numel()].view_as(g))
            offset += g.numel()

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is set on any rank (e.g. a stop signal)."""
        if not self.active:
            return flag
        value = torch.tensor([1 if flag else 0], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def same(self, what: str, digest: str) -> None:
        """Refuse to go on unless every rank holds the same ``digest`` of ``what`` (e.g. a compiled circuit)."""
        if not self.active:
            return
        digests: list = [None] * self.world_size
        dist.all_gather_object(digests, digest)
        if len(set(digests)) > 1:
            differ = [r for r, d in enumerate(digests) if d != digests[0]]
            raise DataError(f"{what} differs between processes (rank 0 and rank(s) {', '.join(map(str, differ))}); "
                            "every rank must compile the same program from the same files")

    def broadcast_parameters(self, module: torch.nn.Module) -> None:
        """Rank 0's weights on every rank (the same seed already gives the same ones; this makes sure)."""
        if self.active:
            for tensor in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(tensor.data, 0)

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def part(self) -> None:
        """Before a stopped run's processes exit: wait until every rank got here (rank 0 after its checkpoint), so
        that no process leaves while another is still inside the collective that decided to stop.  Once a rank is
        here, a peer that has already left (and closed its connection) is no error."""
        if not self.active:
            return
        try:
            dist.barrier()
        except RuntimeError:
            pass


class _Gather(torch.autograd.Function):
    """All-gather whose backward keeps the gradient of this rank's part (no collective in the backward pass)."""

    @staticmethod
    def forward(ctx, tensor, rank, world_size):  # type: ignore[override]
        ctx.rank = rank
        parts = [torch.empty_like(tensor) for _ in range(world_size)]
        dist.all_gather(parts, tensor.contiguous())
        return torch.stack(parts)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        return grad[ctx.rank], None, None
