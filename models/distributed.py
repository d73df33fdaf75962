"""Data-parallel training for the scenario trainer: torch DistributedDataParallel over a process group.

:class:`Ranks` says which rank of how many this process is; ``Ranks.current()`` is None without a process group
or with a group of one, and the trainer then runs exactly its single-process loop. Each train stage wraps the
scenario's loss (``model.calculate_loss``, or ``kt.loss`` while a transfer is attached) in a :class:`StageLoss`
module under DDP (:func:`stage`), so backward all-reduces (averages) the gradients of every trainable parameter,
the transfer projection's included; it is rebuilt per stage because set_kt, remove_kt and freeze change what
trains, and ``find_unused_parameters`` lets a rank whose rows have no profile skip the projection. Every rank
draws the same seeded batch stream and takes its share of each step (:func:`local_part`): ``split`` cuts every
batch into ``world`` contiguous pieces (the scenario's batch size stays the global batch, with as many optimiser
steps as one process), ``stride`` deals whole batches round robin (a full batch per rank per step, ``world`` times
fewer steps). Each step all-reduces the ranks' row counts (:func:`steps`): that is the lockstep flag (a total of
zero ends the epoch on every rank at once, so no rank runs an extra backward) and gives each rank the weight
``rows * world / total`` that turns DDP's average into the mean over the step's rows; a rank without rows joins
with a zero-weight stand-in batch. Rank 0 alone evaluates; :func:`broadcast_score` hands its score to every rank,
so all take the same early-stopping and restore decisions and the parameters stay bit-identical
(:func:`param_digest`).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

SHARDS = ("split", "stride")
Batch = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Ranks:
    """This process's place in the process group, and how batches are shared (``shard`` in SHARDS)."""

    rank: int
    world: int
    shard: str = "split"
    group: Any = None  # a torch ProcessGroup; None is the default group

    def __post_init__(self) -> None:
        if self.shard not in SHARDS:
            raise ValueError(f"shard must be one of {SHARDS}, got {self.shard!r}")
        if not 0 <= self.rank < self.world:
            raise ValueError(f"rank {self.rank} is not in a world of {self.world}")

    @classmethod
    def current(cls, shard: str = "split", group: Any = None) -> Ranks | None:
        """The ranks of the initialised process group; None when there is none or it has one process."""
        if not (dist.is_available() and dist.is_initialized()):
            return None
        world = dist.get_world_size(group)
        return cls(dist.get_rank(group), world, shard, group) if world > 1 else None

    @property
    def leader(self) -> bool:
        return self.rank == 0


class StageLoss(nn.Module):
    """``forward(batch) -> (loss, rec, aux)``: the train stage's loss, with the model and transfer as children."""

    def __init__(self, model: nn.Module, kt: nn.Module | None) -> None:
        super().__init__()
        self.model, self.kt = model, kt

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        if self.kt is None:
            loss = self.model.calculate_loss(batch)
            return loss, loss, None
        return self.kt.loss(batch)


@contextlib.contextmanager
def stage(model: nn.Module, kt: nn.Module | None, ranks: Ranks) -> Iterator[nn.Module]:
    """The DDP-wrapped :class:`StageLoss` for one train stage; its gradient hooks go when the stage ends."""
    wrapped = nn.parallel.DistributedDataParallel(
        StageLoss(model, kt), process_group=ranks.group, forward_sync_buffers=False,  # equal on every rank
        find_unused_parameters=True)
    try:
        yield wrapped
    finally:
        wrapped._remove_autograd_hooks()  # the next stage's wrapper must be the only one reducing gradients


def rows(batch: Batch) -> int:
    return int(batch["user"].shape[0])


def local_part(step: list[Batch], rank: int, world: int, shard: str) -> Batch | None:
    """This rank's share of one step's batches (one batch for ``split``, up to ``world`` for ``stride``)."""
    if shard == "stride":
        return step[rank] if rank < len(step) else None
    (batch,) = step
    n = rows(batch)
    lo, hi = n * rank // world, n * (rank + 1) // world
    return {key: value[lo:hi] for key, value in batch.items()} if hi > lo else None


def steps(batches: Iterable[Batch], ranks: Ranks) -> Iterator[tuple[Batch, float]]:
    """``(batch, loss weight)`` for every step of the epoch, the same number of steps on every rank."""
    stream = iter(batches)
    per_step = ranks.world if ranks.shard == "stride" else 1
    last: Batch | None = None
    while True:
        step = [b for _, b in zip(range(per_step), stream, strict=False)]
        mine = local_part(step, ranks.rank, ranks.world, ranks.shard) if step else None
        counts = torch.tensor([rows(mine) if mine is not None else 0], dtype=torch.float64)
        dist.all_reduce(counts, group=ranks.group)
        total = float(counts[0])
        if total == 0:
            return
        last = step[0] if step else last
        if mine is not None:
            yield mine, rows(mine) * ranks.world / total
        elif last is not None:
            yield {key: value[:1] for key, value in last.items()}, 0.0  # joins the all-reduce, adds nothing
        else:
            raise RuntimeError(f"rank {ranks.rank} has no batch to join a training step with")


def epoch(loss_step: nn.Module, batches: Iterable[Batch], optimizer: torch.optim.Optimizer,
          ranks: Ranks) -> tuple[float, float, float | None]:
    """One epoch of DDP steps; the mean (over steps) of each step's global loss, recommendation and transfer
    parts, identical on every rank."""
    totals = torch.zeros(4, dtype=torch.float64)  # loss, rec, aux (each weighted by the rank's row share), steps
    has_aux = False
    for batch, weight in steps(batches, ranks):
        optimizer.zero_grad()
        loss, rec, aux = loss_step(batch)
        (loss * weight).backward()
        optimizer.step()
        share = weight / ranks.world
        has_aux = aux is not None
        totals += torch.tensor([loss.item(), rec.item(), aux.item() if has_aux else 0.0, 1.0]) * share
    dist.all_reduce(totals, group=ranks.group)
    means = (totals[:3] / max(float(totals[3]), 1.0)).tolist()
    return means[0], means[1], (means[2] if has_aux else None)


def broadcast_score(score: float | None, ranks: Ranks) -> float:
    """Rank 0's ``score`` on every rank (the others pass None)."""
    value = torch.tensor([score if ranks.leader else 0.0], dtype=torch.float64)
    dist.broadcast(value, src=dist.get_global_rank(ranks.group, 0) if ranks.group else 0, group=ranks.group)
    return float(value[0])


def broadcast_object(obj: Any, ranks: Ranks) -> Any:
    """Rank 0's ``obj`` (picklable) on every rank (the others pass anything, e.g. None)."""
    box = [obj if ranks.leader else None]
    dist.broadcast_object_list(box, src=dist.get_global_rank(ranks.group, 0) if ranks.group else 0, group=ranks.group)
    return box[0]


def gather(obj: Any, ranks: Ranks) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order, on every rank."""
    out: list[Any] = [None] * ranks.world
    dist.all_gather_object(out, obj, group=ranks.group)
    return out


def param_digest(module: nn.Module) -> str:
    """SHA-256 of a module's state (names, dtypes, shapes and bytes): equal digests mean bit-identical weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
