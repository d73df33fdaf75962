"""One user's alignment samples, in plain Python (the Spark job maps it over users): deterministic for a seed.

Input: the user's events in time order (``item_id, title, title_key, rating, text, split``; a title may be
null), and the user's sampled unseen items (``item_id, title`` in reading order, jobs/delrec/negatives.py:
nothing the user interacted with, matched by title). Every random choice draws from a generator seeded by
``(seed, crc32(user_id), task)``, so a rerun writes the same samples whatever the partitioning.

Cut-offs (leave-one-out): ``train`` samples read training events only; ``valid`` = the valid item after the
training items; ``test`` = the test item after training + valid. Only ``train`` samples are ever trained on.

Rules for bad input, each a named ``skip`` reason or a counted event (jobs/align/data.py reports them):

- an untitled item is left out of every history and candidate list (``untitled_events``); a sample whose
  target is untitled is skipped (``untitled_target``);
- leakage: a training event whose title equals the user's valid or test title (a duplicate-title twin of the
  held-out item) is left out of every training sample of that user (``train_event_shares_target_title``), so
  no valid/test target title appears in any training sample of its user;
- a user with fewer than 3 interactions has no valid/test item (the leave-one-out rule); its valid and test
  samples are skipped (``fewer_than_3_interactions``), its training samples are kept when it has enough;
- ``short_history`` (fewer titled training items than the task needs), ``candidate_pool_small`` (fewer unseen
  items than candidates asked), ``no_rating`` (the target has no rating), ``short_text`` (MLM text under 4 words).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from models.align import prompts as tpl

SAMPLE_COLUMNS = ["user_id", "task", "cutoff", "prompt", "answer", "target_id", "candidate_ids", "candidate_titles",
                  "target_index", "rating", "history_ids", "n_train", "skip"]
TASK_CODE = {task: k for k, task in enumerate(tpl.TASKS)}


@dataclass(frozen=True)
class Shape:
    n_candidates: int = 20
    max_history: int = 10
    mim_rate: float = 0.2  # share of a history's titles masked (at least one)
    mlm_rate: float = 0.15  # share of an item text's words masked, in spans of up to 3 words
    max_words: int = 32  # MLM reads the first words of an item's text
    with_rating: bool = True
    seed: int = 2024

    def __post_init__(self) -> None:
        if self.n_candidates < 2 or self.max_history < 2 or not 0 < self.mim_rate < 1 or not 0 < self.mlm_rate < 1:
            raise ValueError(f"need n_candidates >= 2, max_history >= 2 and rates in (0, 1): {self}")

    def negative_range(self, what: str) -> tuple[int, int]:
        """0-based slice of the user's sampled items read by ``what`` (test first: a short pool starves
        training, never test); no two samples of a user share a sampled item."""
        n = self.n_candidates - 1
        start = {"ranking/test": 0, "ranking/valid": n, "ranking/train": 2 * n, "bpr/train": 3 * n}[what]
        return start, start + (1 if what == "bpr/train" else n)

    @property
    def need(self) -> int:
        return 3 * (self.n_candidates - 1) + 1


def rng(seed: int, user: str, task: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(str(user).encode()), TASK_CODE[task]])


def _row(user, task, cutoff, n_train, *, skip=None, prompt=None, answer=None, target=None, candidates=(),
         target_index=None, history=()) -> dict:
    return {"user_id": str(user), "task": task, "cutoff": cutoff, "prompt": prompt, "answer": answer,
            "target_id": None if target is None else str(target["item_id"]),
            "candidate_ids": [str(c["item_id"]) for c in candidates],
            "candidate_titles": [c["title"] for c in candidates], "target_index": target_index,
            "rating": None if target is None or target.get("rating") is None else float(target["rating"]),
            "history_ids": [str(h["item_id"]) for h in history], "n_train": int(n_train), "skip": skip}


def _rec_rows(user, cutoff, history, target, negatives, shape: Shape, n_train) -> list[dict]:
    """retrieval, ranking and (when rated) rating samples predicting ``target`` after ``history``."""
    tasks = ["retrieval", "ranking"] + (["rating"] if shape.with_rating else [])
    if target is None or target["title"] is None:
        reason = "fewer_than_3_interactions" if target is None else "untitled_target"
        return [_row(user, t, cutoff, n_train, skip=reason) for t in tasks]
    if not history:
        return [_row(user, t, cutoff, n_train, skip="short_history") for t in tasks]
    shown = history[-shape.max_history:]
    titles = [h["title"] for h in shown]
    prompt, answer = tpl.retrieval(titles, target["title"])
    out = [_row(user, "retrieval", cutoff, n_train, prompt=prompt, answer=answer, target=target, history=history)]
    lo, hi = shape.negative_range(f"ranking/{cutoff}")
    drawn = negatives[lo:hi]
    if len(drawn) < shape.n_candidates - 1:
        out.append(_row(user, "ranking", cutoff, n_train, skip="candidate_pool_small"))
    else:
        pool = [target] + list(drawn)
        order = rng(shape.seed, f"{user}/{cutoff}", "ranking").permutation(len(pool))
        candidates = [pool[k] for k in order]
        prompt, answer = tpl.ranking(titles, [c["title"] for c in candidates], target["title"])
        out.append(_row(user, "ranking", cutoff, n_train, prompt=prompt, answer=answer, target=target,
                        candidates=candidates, target_index=int(np.flatnonzero(order == 0)[0]), history=history))
    if shape.with_rating:
        if target.get("rating") is None or any(h.get("rating") is None for h in shown):
            out.append(_row(user, "rating", cutoff, n_train, skip="no_rating"))
        else:
            prompt, answer = tpl.rating(titles, [h["rating"] for h in shown], target["title"], target["rating"])
            out.append(_row(user, "rating", cutoff, n_train, prompt=prompt, answer=answer, target=target,
                            history=history))
    return out


def _aux_rows(user, train, negatives, shape: Shape, n_train) -> list[dict]:
    """mim, mlm and bpr samples from the (leak-free, titled) training events."""
    out = []
    shown = train[-shape.max_history:]
    if len(shown) < 3:
        out.append(_row(user, "mim", "train", n_train, skip="short_history"))
    else:
        k = max(1, min(len(shown) - 1, round(shape.mim_rate * len(shown))))
        masked = sorted(rng(shape.seed, user, "mim").choice(len(shown), size=k, replace=False).tolist())
        prompt, answer = tpl.mim([h["title"] for h in shown], masked)
        out.append(_row(user, "mim", "train", n_train, prompt=prompt, answer=answer,
                        target={"item_id": shown[masked[0]]["item_id"]}, history=train))
    if not train:
        out.append(_row(user, "mlm", "train", n_train, skip="short_history"))
    else:
        draw = rng(shape.seed, user, "mlm")
        item = train[int(draw.integers(len(train)))]
        words = (item.get("text") or item["title"]).split()[:shape.max_words]
        if len(words) < 4:
            out.append(_row(user, "mlm", "train", n_train, skip="short_text"))
        else:
            prompt, answer = tpl.mlm(words, mlm_spans(len(words), shape.mlm_rate, draw))
            out.append(_row(user, "mlm", "train", n_train, prompt=prompt, answer=answer,
                            target={"item_id": item["item_id"]}, history=[item]))
    lo, hi = shape.negative_range("bpr/train")
    if len(train) < 2:
        out.append(_row(user, "bpr", "train", n_train, skip="short_history"))
    elif len(negatives) < hi:
        out.append(_row(user, "bpr", "train", n_train, skip="candidate_pool_small"))
    else:
        positive, negative = train[-1], negatives[lo]
        pair = [positive, negative] if rng(shape.seed, user, "bpr").random() < 0.5 else [negative, positive]
        prompt, answer = tpl.bpr([h["title"] for h in train[:-1][-shape.max_history:]], pair[0]["title"],
                                 pair[1]["title"], positive["title"])
        out.append(_row(user, "bpr", "train", n_train, prompt=prompt, answer=answer, target=positive,
                        candidates=pair, target_index=pair.index(positive), history=train[:-1]))
    return out


def mlm_spans(n_words: int, rate: float, draw: np.random.Generator) -> list[tuple[int, int]]:
    """Non-overlapping ``(start, length)`` spans of 1..3 words covering about ``rate`` of ``n_words``, not all,
    with at least one word between spans (so two masks never touch)."""
    budget = max(1, round(rate * n_words))
    spans, taken = [], np.zeros(n_words + 1, dtype=bool)
    for start in draw.permutation(n_words).tolist():
        if budget <= 0:
            break
        length = int(min(budget, draw.integers(1, 4), n_words - start))
        if taken[max(0, start - 1):start + length + 1].any() or length >= n_words:
            continue
        taken[start:start + length] = True
        spans.append((start, length))
        budget -= length
    return sorted(spans)


def user_samples(user: str, events: list[dict], negatives: list[dict], shape: Shape) -> tuple[list[dict], dict]:
    """(every sample row of ``user``, kept or with its skip reason; counted events) -- see the module doc."""
    by_split = {s: [e for e in events if e["split"] == s] for s in ("train", "valid", "test")}
    valid = by_split["valid"][0] if by_split["valid"] else None
    test = by_split["test"][0] if by_split["test"] else None
    forbidden = {e["title_key"] for e in (valid, test) if e is not None and e["title_key"] is not None}
    titled = [e for e in by_split["train"] if e["title"] is not None]
    clean = [e for e in titled if e["title_key"] not in forbidden]
    counts = {"untitled_events": sum(e["title"] is None for e in events),
              "train_event_shares_target_title": len(titled) - len(clean)}
    n_train = len(by_split["train"])
    rows = _rec_rows(user, "train", clean[:-1], clean[-1] if clean else {"title": None, "item_id": None},
                     negatives, shape, n_train) if len(clean) >= 1 else \
        [_row(user, t, "train", n_train, skip="short_history") for t in ("retrieval", "ranking", "rating")
         if t != "rating" or shape.with_rating]
    rows += _aux_rows(user, clean, negatives, shape, n_train)
    valid_history = titled
    test_history = titled + ([valid] if valid is not None and valid["title"] is not None else [])
    rows += _rec_rows(user, "valid", valid_history, valid, negatives, shape, n_train)
    rows += _rec_rows(user, "test", test_history, test, negatives, shape, n_train)
    return rows, counts
