"""The alignment tasks' prompts in the project's own wording; torch-free so the Spark job renders with it.

No user ids anywhere (P5-style ids leak answers through their order): a user is their history of titles.
Histories are oldest first and ``; ``-separated; candidate lists one title per line. Every render function
returns ``(prompt, answer)``; the answer is what the LLM is tuned to produce (and, for ranking and rating,
what candidate scoring compares against).

- ``retrieval``: the history -> the next item's title.
- ``ranking``: the history and ``C`` candidates -> the title of the one the user chose (the top of the order).
- ``rating``: the history with its ratings and a target title -> a digit 1..5.
- ``mim`` (masked item modelling): the history with some titles shown as ``[mask]`` -> those titles in order.
- ``mlm`` (masked language modelling on item text): an item's text with word spans shown as ``[mask]`` -> the
  missing spans in order.
- ``bpr`` (BPR in words): the history and two items, a later positive and a sampled negative -> the positive.
"""

from __future__ import annotations

from collections.abc import Sequence

REC_TASKS = ("retrieval", "ranking", "rating")
AUX_TASKS = ("mim", "mlm", "bpr")
TASKS = REC_TASKS + AUX_TASKS
MASK = "[mask]"
SEP = "; "
TEMPLATE_VERSION = "align-v1"
SYSTEM = "You are a recommender. Answer with item titles exactly as written."
HISTORY = "A user's items, oldest first: "


def _history(titles: Sequence[str]) -> str:
    return HISTORY + SEP.join(titles) + "."


def retrieval(history: Sequence[str], target: str) -> tuple[str, str]:
    return _history(history) + "\nWhich item will the user choose next? Answer with its title.", target


def ranking(history: Sequence[str], candidates: Sequence[str], target: str) -> tuple[str, str]:
    return (_history(history) + "\nOrder these candidates by how likely the user is to choose each next:\n"
            + "\n".join(candidates) + "\nAnswer with the title of the first one.", target)


def rating(history: Sequence[str], ratings: Sequence[float], target: str, value: float) -> tuple[str, str]:
    rated = SEP.join(f"{t} ({int(round(r))})" for t, r in zip(history, ratings, strict=True))
    return (f"A user's ratings from 1 to 5, oldest first: {rated}.\nHow will the user rate {target}? "
            "Answer with one digit from 1 to 5.", str(int(round(value))))


def mim(history: Sequence[str], masked: Sequence[int]) -> tuple[str, str]:
    """``masked``: positions of ``history`` shown as [mask]; the answer lists their titles in order."""
    chosen = sorted(set(masked))
    shown = [MASK if k in chosen else t for k, t in enumerate(history)]
    return (HISTORY + SEP.join(shown) + f".\nWhich items are hidden as {MASK}? Answer with their titles in "
            "order, separated by '; '.", SEP.join(history[k] for k in chosen))


def mlm(words: Sequence[str], spans: Sequence[tuple[int, int]]) -> tuple[str, str]:
    """``spans``: ``(start, length)`` word ranges of ``words`` shown as one [mask] each, non-overlapping."""
    spans = sorted(spans)
    shown, answer, at = [], [], 0
    for start, length in spans:
        if start < at or length < 1 or start + length > len(words):
            raise ValueError(f"spans must be in range and must not overlap: {spans} over {len(words)} words")
        shown += list(words[at:start]) + [MASK]
        answer.append(" ".join(words[start:start + length]))
        at = start + length
    shown += list(words[at:])
    return (f"Fill in each {MASK} of this item description: " + " ".join(shown)
            + "\nAnswer with the missing words, separated by '; '.", SEP.join(answer))


def bpr(history: Sequence[str], first: str, second: str, positive: str) -> tuple[str, str]:
    if positive not in (first, second):
        raise ValueError("the positive must be one of the two items")
    return (_history(history) + f"\nWhich of these two items does the user prefer?\n{first}\n{second}\n"
            "Answer with its title.", positive)
