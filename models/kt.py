"""LLM-KT knowledge transfer: a forward hook on a named module, no change to the model's code.

:class:`KnowledgeTransfer` hooks ``model.get_submodule(layer)``, keeps what that module returns while the
model computes its recommendation loss, and adds an auxiliary loss pulling the captured representation of
the batch's entities towards their profile embeddings: ``(1 - α)·L_rec + α·L_kt`` with
``L_kt = RMSE(p, t)`` or ``mean(1 - cos(p, t))``. ``p`` is the captured row mapped to the profile space by a
learned linear projection, or the row itself when the profiles were reduced (PCA, :func:`reduce_profiles`)
to the layer's width.

Which rows belong to which entity (``index``):

- ``ids``: the module is an ``nn.Embedding`` of the side's entities: the ids it was called with are the
  entities (BPR's ``user_embedding(batch_users)``, or the item table called with positives and negatives).
  A table with one extra leading padding row (``padding_idx=0``, ids shifted by one) is understood too.
- ``table``: the output holds one row per entity of the side (LightGCN's propagated all-user matrix):
  rows are taken at the batch's ids (``batch['user']`` or ``batch['pos_item']``).
- ``batch``: the output holds one row per batch example, aligned with the batch's ids.
- ``auto`` (default): ``ids`` for an ``nn.Embedding``; otherwise ``table`` when the leading dimension is
  the number of entities, ``batch`` when it is the batch size; equal sizes are ambiguous and raise.

A tuple output needs ``output`` (the position to take); a 3-d per-row output ``[B, L, d]`` (a sequence
encoder) contributes its last position. Every call of the module during one loss computation counts.
Entities without a profile are left out of the loss. Hooks record only inside :meth:`loss`, so
evaluation passes capture nothing, and :meth:`remove` (also on leaving a ``with`` block) detaches them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

Side = Literal["user", "item"]
SIDES = ("user", "item")
LOSSES = ("rmse", "cosine")
INDEX_RULES = ("auto", "ids", "table", "batch")
BATCH_KEY = {"user": "user", "item": "pos_item"}


@dataclass
class ProfileTargets:
    """Profile embeddings aligned with a side's dense indices; ``mask`` marks entities that have one."""

    embeddings: torch.Tensor  # [n_entities, dim] float32
    mask: torch.Tensor  # [n_entities] bool

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])


def align_profiles(ids: np.ndarray, vectors: dict[str, np.ndarray]) -> ProfileTargets:
    """Order profile vectors by a side's dense index (``TrainData.user_ids`` / ``item_ids``)."""
    if not vectors:
        raise ValueError("no profile embeddings to align")
    dim = len(next(iter(vectors.values())))
    out = np.zeros((len(ids), dim), dtype=np.float32)
    mask = np.zeros(len(ids), dtype=bool)
    for pos, entity in enumerate(ids):
        vec = vectors.get(str(entity))
        if vec is not None:
            out[pos], mask[pos] = vec, True
    return ProfileTargets(torch.from_numpy(out), torch.from_numpy(mask))


def reduce_profiles(targets: ProfileTargets, *, dim: int, whiten: bool = False) -> ProfileTargets:
    """PCA (centred; optionally whitened) of the profiles that exist, to ``dim`` components."""
    from sklearn.decomposition import PCA

    known = targets.embeddings[targets.mask].numpy()
    if dim > min(known.shape):
        raise ValueError(f"cannot reduce {known.shape[0]} profiles of width {known.shape[1]} to {dim} dims")
    pca = PCA(n_components=dim, whiten=whiten, random_state=0).fit(known)
    reduced = pca.transform(targets.embeddings.numpy()).astype(np.float32)
    reduced[~targets.mask.numpy()] = 0.0
    return ProfileTargets(torch.from_numpy(reduced), targets.mask.clone())


def standardize_profiles(targets: ProfileTargets) -> ProfileTargets:
    """Centre each dimension and scale it to unit variance (over entities with a profile): removes the
    shared component that makes template profiles look alike."""
    known = targets.embeddings[targets.mask]
    mean, std = known.mean(0), known.std(0).clamp_min(1e-6)
    out = (targets.embeddings - mean) / std
    out[~targets.mask] = 0.0
    return ProfileTargets(out, targets.mask.clone())


class _Recorder:
    """Outputs (and, for embeddings, input ids) of the hooked module while ``on`` is set."""

    def __init__(self) -> None:
        self.on = False
        self.calls: list[tuple[torch.Tensor | tuple, torch.Tensor | None]] = []


def _record_hook(recorder: _Recorder, module: nn.Module, inputs: tuple, output) -> None:
    if recorder.on:
        ids = inputs[0] if isinstance(module, nn.Embedding) else None
        recorder.calls.append((output, ids))


def probe_output(model: nn.Module, layer: str, batch: dict) -> list[torch.Tensor | tuple]:
    """Run ``calculate_loss`` once (no grad) and return what ``layer`` produced in each call."""
    recorder = _Recorder()
    recorder.on = True
    handle = model.get_submodule(layer).register_forward_hook(functools.partial(_record_hook, recorder))
    # A probe leaves no trace: its own random stream (dropout) and the buffers put back (MultVAE's anneal step,
    # batch-norm statistics), so a run that probes trains exactly like one that does not.
    buffers = {name: buf.clone() for name, buf in model.named_buffers()}
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            model.calculate_loss(batch)
    finally:
        handle.remove()
        with torch.no_grad():
            for name, buf in model.named_buffers():
                if name in buffers:
                    buf.copy_(buffers[name])
    return [out for out, _ in recorder.calls]


def layer_width(model: nn.Module, layer: str, batch: dict, *, output: int | None = None) -> int:
    """The width (last dimension) of ``layer``'s output on a real batch; errors say why it has none."""
    calls = probe_output(model, layer, batch)
    if not calls:
        raise ValueError(f"layer {layer!r} did not run during calculate_loss (a model that reads its weight "
                         "directly never calls the module); choose a module that runs in the forward pass")
    return int(_select(calls[0], output, layer).shape[-1])


def _select(out, output: int | None, layer: str) -> torch.Tensor:
    if isinstance(out, (tuple, list)):
        if output is None or not -len(out) <= output < len(out):
            raise ValueError(f"layer {layer!r} returns a tuple of {len(out)}; set `output` to 0..{len(out) - 1}")
        out = out[output]
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"layer {layer!r} returns {type(out).__name__}, not a tensor")
    return out


class KnowledgeTransfer(nn.Module):
    """The transfer loss for one hooked layer and side. Owns only the projection, never the model.

    Use as ``with KnowledgeTransfer(model, ...) as kt: total, rec, aux = kt.loss(batch)``, or call
    :meth:`remove` in a ``finally``. ``width`` is the layer's output width (see :func:`layer_width`).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        layer: str,
        side: Side,
        targets: ProfileTargets,
        width: int,
        loss: str = "rmse",
        alpha: float = 0.5,
        project: bool = True,
        index: str = "auto",
        output: int | None = None,
    ) -> None:
        super().__init__()
        if side not in SIDES or loss not in LOSSES or index not in INDEX_RULES:
            raise ValueError(f"side in {SIDES}, loss in {LOSSES}, index in {INDEX_RULES}; got {side}, {loss}, {index}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if not project and width != targets.dim:
            raise ValueError(f"layer {layer!r} is {width} wide but the profiles are {targets.dim}-d; "
                             f"reduce_dim to {width} or use a projection")
        object.__setattr__(self, "model", model)  # a plain reference: kt.parameters() stays the projection's
        self.layer, self.side, self.kind, self.alpha = layer, side, loss, alpha
        self.index, self.output = index, output
        self.n_entities = model.n_users if side == "user" else model.n_items
        self.register_buffer("targets", targets.embeddings, persistent=False)
        self.register_buffer("has_profile", targets.mask, persistent=False)
        # Drawn from its own stream so that attaching the transfer leaves the model's random numbers (dropout,
        # later initialisations) as they are: with alpha 0 the run is then bit-identical to its no-KT twin.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(torch.initial_seed() + 1)
            self.projection = nn.Linear(width, targets.dim) if project else nn.Identity()
        self._recorder = _Recorder()
        module = model.get_submodule(layer)
        self._handle = module.register_forward_hook(functools.partial(_record_hook, self._recorder))
        self._table_rows = getattr(module, "num_embeddings", None)  # not the module: it would register

    # --- lifecycle ------------------------------------------------------------------------------------
    def remove(self) -> None:
        """Detach the hook; the model is the plain model again. Safe to call twice."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        self._recorder.calls.clear()

    def __enter__(self) -> KnowledgeTransfer:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    # --- loss -----------------------------------------------------------------------------------------
    def loss(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(total, rec, kt)`` for one batch: ``total = (1-α)·rec + α·kt``."""
        if self._handle is None:
            raise RuntimeError("knowledge transfer was removed")
        self._recorder.calls.clear()
        self._recorder.on = True
        try:
            rec = self.model.calculate_loss(batch)
        finally:
            self._recorder.on = False
        aux = self.transfer_loss(batch)
        return (1.0 - self.alpha) * rec + self.alpha * aux, rec, aux

    def transfer_loss(self, batch: dict) -> torch.Tensor:
        """``L_kt`` over the rows recorded since the last :meth:`loss` call."""
        if not self._recorder.calls:
            raise RuntimeError(f"layer {self.layer!r} did not run during calculate_loss")
        rows, ids = zip(*(self._rows(out, ids, batch) for out, ids in self._recorder.calls), strict=False)
        self._recorder.calls.clear()
        rows_t, ids_t = torch.cat(rows), torch.cat(ids)
        keep = self.has_profile[ids_t]
        if not bool(keep.any()):
            return rows_t.sum() * 0.0  # no profiled entity in this batch: zero, still in the graph
        pred, target = self.projection(rows_t[keep]), self.targets[ids_t[keep]]
        if self.kind == "rmse":
            return torch.sqrt(F.mse_loss(pred, target) + 1e-12)
        return (1.0 - F.cosine_similarity(pred, target, dim=-1)).mean()

    def _rows(self, out, ids: torch.Tensor | None, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(rows [N, width], entity ids [N]) for one recorded call, by the ``index`` rule."""
        out = _select(out, self.output, self.layer)
        rule = self._rule(out, ids, batch)
        if rule == "ids":
            ids = ids.reshape(-1)
            rows = out.reshape(ids.shape[0], -1)
            if self._table_rows == self.n_entities + 1:  # padding row 0, ids shifted by one
                real = ids > 0
                return rows[real], ids[real] - 1
            return rows, ids
        batch_ids = batch[BATCH_KEY[self.side]].reshape(-1)
        if rule == "table":
            return out[batch_ids], batch_ids
        rows = out[:, -1] if out.dim() == 3 else out
        return rows.reshape(batch_ids.shape[0], -1), batch_ids

    def _rule(self, out: torch.Tensor, ids: torch.Tensor | None, batch: dict) -> str:
        if self.index != "auto":
            if self.index == "ids" and ids is None:
                raise ValueError(f"index 'ids' needs an nn.Embedding layer; {self.layer!r} is not one")
            return self.index
        if ids is not None:
            if self._table_rows not in (self.n_entities, self.n_entities + 1):
                raise ValueError(f"embedding {self.layer!r} has {self._table_rows} rows but the "
                                 f"{self.side} side has {self.n_entities} entities; pick the {self.side} table")
            return "ids"
        n_batch = batch[BATCH_KEY[self.side]].shape[0]
        lead = out.shape[0]
        if lead == self.n_entities == n_batch:
            raise ValueError(f"layer {self.layer!r}: batch size equals the number of {self.side}s "
                             f"({lead}); set index to 'table' or 'batch'")
        if lead == self.n_entities:
            return "table"
        if lead == n_batch:
            return "batch"
        raise ValueError(f"layer {self.layer!r} output has {lead} rows: neither the batch size ({n_batch}) "
                         f"nor the number of {self.side}s ({self.n_entities})")
