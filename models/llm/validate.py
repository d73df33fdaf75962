"""Checks every generation before it may become a profile, and retries the bad ones once.

A generation is rejected when it is:
- ``empty``: nothing but whitespace;
- ``non_text``: replacement characters, or under half of its non-space characters are letters
  (token soup, markup, digits);
- ``truncated``: the backend says it stopped at ``max_new_tokens`` (``finish_reason == "length"``) and
  the text does not end a sentence (``.``, ``!``, ``?``, optionally followed by a closing quote or
  bracket). A length stop right after a full sentence is accepted, and a length stop after at least one
  full sentence is cut back to its last full sentence (:func:`trim_to_sentence`) rather than retried: on a
  CPU a retry with twice the allowance costs three times the tokens, for a tail the profile can lose.
- or it already carries the backend's own failure (timeout, HTTP error, prompt too long...).

Rejected rows are generated once more (truncated ones with twice the token allowance); a row that fails
again keeps its reason and is never written as a profile.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata

from models.llm.base import Backend, Generation, Prompt

# Reasons the same inputs bring back (decoding is greedy): retrying them in a later run would only cost
# tokens, so jobs.profiles.generate waits for the entity's inputs to change. Timeouts and HTTP errors are
# not among them.
REPRODUCIBLE = frozenset({"empty", "non_text", "truncated", "prompt_too_long"})
SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*$")
# The end of a full sentence inside a text: end mark (and closing quotes) followed by a space.
INNER_END = re.compile(r"[.!?…][\"'”’)\]]*(?=\s)")
MIN_LETTER_SHARE = 0.5


def reproducible(reason: str) -> bool:
    """True for a failure that generating the same prompt again would repeat (:data:`REPRODUCIBLE`)."""
    return reason.split(":")[0] in REPRODUCIBLE


def clean(text: str) -> str:
    """Collapse whitespace and drop control characters (newlines become spaces)."""
    text = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in text)
    return re.sub(r"\s+", " ", text).strip()


def rejection(gen: Generation) -> str | None:
    """Why ``gen`` cannot be a profile, or None when it can."""
    if gen.failure is not None:
        return gen.failure
    if gen.text is None or not gen.text.strip():
        return "empty"
    text = clean(gen.text)
    visible = [ch for ch in text if not ch.isspace()]
    if (
        "\ufffd" in text
        or not visible
        or sum(ch.isalpha() for ch in visible) / len(visible) < MIN_LETTER_SHARE
    ):
        return "non_text"
    if gen.finish_reason == "length" and not SENTENCE_END.search(text):
        return "truncated"
    return None


def trim_to_sentence(gen: Generation) -> Generation:
    """A length-stopped text cut back to its last full sentence; other generations unchanged."""
    if gen.finish_reason != "length" or not gen.text or SENTENCE_END.search(clean(gen.text)):
        return gen
    ends = list(INNER_END.finditer(gen.text))
    return dataclasses.replace(gen, text=gen.text[: ends[-1].end()]) if ends else gen


def _retry_prompt(prompt: Prompt, reason: str, default_max_new_tokens: int) -> Prompt:
    if reason == "truncated":
        budget = 2 * (prompt.max_new_tokens or default_max_new_tokens)
        return dataclasses.replace(prompt, max_new_tokens=budget)
    return prompt


def generate_checked(
    backend: Backend, prompts: list[Prompt], *, max_new_tokens: int
) -> tuple[list[Generation], int]:
    """Generate, validate, retry rejected rows once; returns (results with failures set, rows retried)."""
    results = backend.generate(prompts)
    if len(results) != len(prompts):
        raise RuntimeError(
            f"backend {backend.name} returned {len(results)} results for {len(prompts)} prompts"
        )
    results = [trim_to_sentence(g) for g in results]
    reasons = {i: r for i, gen in enumerate(results) if (r := rejection(gen)) is not None}
    if reasons:
        order = sorted(reasons)
        retried = backend.generate([_retry_prompt(prompts[i], reasons[i], max_new_tokens) for i in order])
        for i, gen in zip(order, retried, strict=True):
            results[i] = trim_to_sentence(gen)
    final = []
    for gen in results:
        reason = rejection(gen)
        final.append(
            dataclasses.replace(gen, text=clean(gen.text or ""), failure=None)
            if reason is None
            else dataclasses.replace(gen, text=None, failure=reason)
        )
    return final, len(reasons)
