"""Retrieval over the whole catalogue: the next item as a catalogue title, returned as item ids.

Two ways, same answers (a group's title tokens then end-of-sequence, models/align/catalogue.py), same score
(the mean log-probability per answer token, as models.llmrec.scoring computes it):

- :func:`beam_retrieve` -- decoding constrained to catalogue titles: a beam search with the KV cache whose
  allowed tokens come from the catalogue's prefix trie (only tokens that continue a title with an item the
  user may still get); the finished titles, ranked by their mean token log-probability, are the groups
  retrieved. Cost ~ beams x title length per user, whatever the
  catalogue size, so it is what runs on a CPU; a title outside the beams is not retrieved (rank > ``beams``).
- :func:`score_retrieve` -- every live group's title scored in chunks through the packed scorer; exact, and
  linear in the catalogue's tokens (the reference on small catalogues and in tests).

Masked items (the user's own history) are never returned; a retrieved group expands to its unmasked items in
the tie order. Both return, per prompt, the top-``k`` item positions in the catalogue.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from models.align.catalogue import Catalogue
from models.llmrec.layout import Codec, pack
from models.llmrec.scoring import candidate_scores


def _prefix(codec: Codec, prompt: str) -> list[int]:
    ids, after = codec.prefix_ids(prompt)
    if after is not None:
        raise ValueError("retrieval prompts take no soft-prompt marker")
    return ids


@torch.no_grad()
def beam_retrieve(model: nn.Module, codec: Codec, catalogue: Catalogue, prompts: Sequence[str],
                  masked: Sequence[set[int]], *, k: int = 10, beams: int | None = None,
                  batch_size: int = 1) -> list[list[int]]:
    """Per prompt, the top-``k`` item positions by trie-constrained beam search with ``beams`` >= ``k`` beams.

    Our own loop rather than ``generate``: there a beam whose title is complete leaves its slot to a
    disallowed (``-inf``) continuation, and on a trie most titles complete within a few steps of each other,
    so fewer than ``k`` titles come back. Here every step ranks *all* allowed continuations of the running
    beams; an end-of-sequence continuation is a finished title (scored by its mean token log-probability),
    the best ``beams`` others keep running. It stops when nothing runs, or when ``k`` groups have finished
    and no running beam's mean so far beats the ``k``-th (the usual early-stopping heuristic: a mean can
    still rise, so this is a beam search, not an exact top-``k``). ``batch_size`` is unused (one prompt at
    a time: beams of one prompt are the batch)."""
    beams = max(k, beams or k)
    device = next(model.parameters()).device
    model.eval()
    return [_beam_one(model, codec, catalogue, prompts[i], set(masked[i]), k=k, beams=beams, device=device)
            for i in range(len(prompts))]


def _beam_one(model, codec: Codec, catalogue: Catalogue, prompt: str, masked: set[int], *, k: int, beams: int,
              device) -> list[int]:
    live = catalogue.live_groups(masked)
    out = model(input_ids=torch.tensor([_prefix(codec, prompt)], device=device), use_cache=True)
    cache, logits = out.past_key_values, out.logits[:, -1].float()
    running: list[tuple[tuple[int, ...], float]] = [((), 0.0)]  # (answer tokens so far, summed log-prob)
    finished: dict[int, float] = {}
    for _ in range(catalogue.max_answer_len):
        log_probs = torch.log_softmax(logits, dim=-1).cpu()
        options = []
        for b, (tokens, total) in enumerate(running):
            allowed = catalogue.allowed(tokens, live, codec.eos_id)
            values = log_probs[b, allowed].tolist()
            options += [(total + v, b, t) for t, v in zip(allowed, values, strict=True)]
        options.sort(key=lambda o: -o[0])
        keep = []
        for total, b, t in options:
            tokens = running[b][0] + (t,)
            if t == codec.eos_id:
                g = catalogue.group_of_answer(tokens)
                if g is not None and g not in finished:
                    finished[g] = total / len(tokens)
            elif len(keep) < beams:
                keep.append((b, tokens, total))
        best = sorted(finished.values(), reverse=True)
        if not keep or (len(best) >= k and max(total / len(tokens) for _, tokens, total in keep) < best[k - 1]):
            break
        cache.reorder_cache(torch.tensor([b for b, _, _ in keep], device=device))
        running = [(tokens, total) for _, tokens, total in keep]
        step = torch.tensor([[tokens[-1]] for tokens, _ in running], device=device)
        out = model(input_ids=step, past_key_values=cache, use_cache=True)
        cache, logits = out.past_key_values, out.logits[:, -1].float()
    ranked = sorted(finished, key=lambda g: -finished[g])
    return catalogue.expand(ranked, masked, k)


@torch.no_grad()
def score_retrieve(model: nn.Module, codec: Codec, catalogue: Catalogue, prompts: Sequence[str],
                   masked: Sequence[set[int]], *, k: int = 10, chunk: int = 64, rows: int = 4) -> list[list[int]]:
    """Per prompt, the top-``k`` item positions by scoring every live group's title (ties: group order)."""
    model.eval()
    out = []
    for i, prompt in enumerate(prompts):
        live = catalogue.live_groups(set(masked[i]))
        groups = [g for g in range(len(catalogue.groups)) if live is None or g in live]
        titles = [catalogue.titles[catalogue.members[g][0]] for g in groups]
        lists = [titles[s:s + chunk] for s in range(0, len(titles), chunk)]
        values = []
        for s in range(0, len(lists), rows):
            part = lists[s:s + rows]
            scores = candidate_scores(model, pack(codec, [prompt] * len(part), part)).float().cpu().numpy()
            values += [v for r, titles_r in enumerate(part) for v in scores[r, :len(titles_r)]]
        order = np.argsort(-np.asarray(values), kind="stable")
        out.append(catalogue.expand([groups[j] for j in order[:k]], set(masked[i]), k))
    return out
