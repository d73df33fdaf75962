"""Candidate scoring: the length-normalised log-likelihood of each candidate's whole title as the answer.

``score = (1 / n) * sum_t log p(answer_t | prompt, answer_<t)`` over the ``n`` answer tokens (the title's
tokens and the end-of-sequence token), computed for all candidates of a batch in one forward pass over the
packed layout of :mod:`models.llmrec.layout`. No first-sub-token shortcut: two titles that share their
first token ("The ...") still differ by everything after it. Candidates a row does not have score
``-inf``. The result keeps its graph, so the same function serves training (a loss over the candidate
scores) and inference (under ``torch.no_grad()``).
"""

from __future__ import annotations

import torch
from torch import nn

from models.llmrec.layout import Packed


def _additive(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(
        ~allowed, torch.finfo(dtype).min).unsqueeze(1)


def attention_masks(model: nn.Module, packed: Packed, dtype: torch.dtype, device: torch.device):
    """The packed mask as the model takes it: one additive [B, 1, T, T] mask, or one per layer type for
    models that alternate full and sliding-window layers (Gemma 3, Qwen 2)."""
    allowed = packed.allowed.to(device)
    full = _additive(allowed, dtype)
    config = getattr(model, "config", None)
    layer_types = set(getattr(config, "layer_types", None) or ())
    if "sliding_attention" not in layer_types or not getattr(config, "sliding_window", None):
        return full
    pos = packed.position_ids.to(device)
    near = (pos[:, :, None] - pos[:, None, :]) < int(config.sliding_window)
    return {"full_attention": full, "sliding_attention": _additive(allowed & near, dtype)}


def inputs_embeds(model: nn.Module, packed: Packed, soft: torch.Tensor | None) -> torch.Tensor:
    """Token embeddings [B, T, d] with the soft-prompt vectors [K, d] written into the soft slots."""
    embedding = model.get_input_embeddings()
    device = embedding.weight.device
    embeds = embedding(packed.input_ids.to(device))
    slots = packed.soft_slots.to(device)
    per_row = slots.sum(1)
    if soft is None:
        if bool(per_row.any()):
            raise ValueError("the batch reserves soft-prompt slots but no soft prompt was given")
        return embeds
    if not bool((per_row == soft.shape[0]).all()):
        raise ValueError(f"every row must reserve exactly {soft.shape[0]} soft-prompt slots, got {per_row.tolist()}")
    source = soft.to(device=device, dtype=embeds.dtype).repeat(embeds.shape[0], 1)
    return embeds.masked_scatter(slots.unsqueeze(-1), source)


def candidate_scores(model: nn.Module, packed: Packed, soft: torch.Tensor | None = None) -> torch.Tensor:
    """[B, C] mean log-probability per answer token of every candidate; ``-inf`` where a row has fewer."""
    embeds = inputs_embeds(model, packed, soft)
    device = embeds.device
    out = model(inputs_embeds=embeds, attention_mask=attention_masks(model, packed, embeds.dtype, device),
                position_ids=packed.position_ids.to(device), logits_to_keep=packed.kept, use_cache=False)
    logits = out.logits.float()  # [B, kept, V]: kept position 0 is the prompt's last token (P - 1)
    source, answer = packed.answer_source.to(device), packed.answer_ids.to(device)
    rows = torch.arange(answer.shape[0], device=device).view(-1, 1, 1)
    log_prob = logits[rows, source, answer] - torch.logsumexp(logits, dim=-1)[rows, source]  # [B, C, L]
    mask = packed.answer_mask.to(device)
    n = mask.sum(-1)
    score = (log_prob * mask).sum(-1) / n.clamp(min=1)
    return score.masked_fill(n == 0, float("-inf"))
