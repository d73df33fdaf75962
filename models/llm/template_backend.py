"""The no-LLM backend: deterministic profile text from the prompt's facts (the embedded default).

User profiles read like an analyst's note: demographics, how much and how generously the user rates,
the genres and decades they favour and avoid (by rating-weighted share), and a few liked and disliked
titles. Item profiles restate the item's fields. It needs no model, so it is the fallback everywhere.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from models.llm.base import Generation, Prompt, approx_tokens, failed
from models.llm.prompts import age_bucket

LIKED, DISLIKED = 4.0, 2.0


def _share_phrase(counter: Counter[str], total: int, top: int = 3) -> str:
    return ", ".join(f"{name} ({100 * n / total:.0f}%)" for name, n in counter.most_common(top))


def _decade(year: int | None) -> str | None:
    return f"{year // 10 * 10}s" if year else None


def _demographics(attrs: dict[str, Any]) -> str:
    gender = {"M": "male", "F": "female"}.get(str(attrs.get("gender") or ""), attrs.get("gender") or "")
    age = age_bucket(attrs.get("age"))
    who = " ".join(p for p in (gender, f"aged {age}" if age else "") if p) or "unknown demographics"
    occupation = attrs.get("occupation")
    return f"A {who} user" + (f" working as {occupation}" if occupation and occupation != "none" else "")


def _taste(history: list[list[Any]]) -> list[str]:
    liked_g: Counter[str] = Counter()
    disliked_g: Counter[str] = Counter()
    decades: Counter[str] = Counter()
    for _, _, rating, year, genres in history:
        names = [g for g in (genres or "").split("|") if g and g.lower() != "unknown"]
        if rating is not None and rating >= LIKED:
            liked_g.update(names)
        if rating is not None and rating <= DISLIKED:
            disliked_g.update(names)
        if (decade := _decade(year)) is not None:
            decades[decade] += 1
    out = []
    if liked_g:
        out.append(
            f"Favourite genres among highly rated items: {_share_phrase(liked_g, sum(liked_g.values()))}."
        )
    if disliked_g:
        out.append(f"Genres most often rated low: {_share_phrase(disliked_g, sum(disliked_g.values()), 2)}.")
    if decades:
        out.append(f"Mostly rates items from the {_share_phrase(decades, sum(decades.values()), 2)}.")
    return out


def user_text(facts: dict[str, Any]) -> str:
    history = facts.get("history") or []
    ratings = [r[2] for r in history if r[2] is not None]
    parts = [_demographics(facts.get("attributes") or {}) + f" who rated {len(history)} items."]
    if ratings:
        mean = sum(ratings) / len(ratings)
        high = sum(r >= LIKED for r in ratings) / len(ratings)
        low = sum(r <= DISLIKED for r in ratings) / len(ratings)
        style = "generous" if mean >= 3.8 else "critical" if mean <= 3.2 else "balanced"
        parts.append(
            f"A {style} rater: mean rating {mean:.1f} of 5, {100 * high:.0f}% of ratings 4 or "
            f"higher, {100 * low:.0f}% 2 or lower."
        )
    parts += _taste(history)
    liked = [r[1] for r in history if r[2] is not None and r[2] >= 5][:3]
    disliked = [r[1] for r in history if r[2] is not None and r[2] <= 1][:2]
    if liked:
        parts.append(f"Recently loved: {'; '.join(liked)}.")
    if disliked:
        parts.append(f"Recently disliked: {'; '.join(disliked)}.")
    return " ".join(parts)


def item_text(facts: dict[str, Any]) -> str:
    title = facts.get("title") or "An untitled item"
    kind = facts.get("kind", "item")
    parts = [
        f"{title} is a {kind}" + (f" from the {_decade(facts['year'])}" if facts.get("year") else "") + "."
    ]
    if facts.get("genres"):
        parts.append(f"Genres: {', '.join(g for g in facts['genres'].split('|') if g)}.")
    for key, label in (("categories", "Categories"), ("brand", "Brand"), ("description", "About")):
        if facts.get(key):
            parts.append(f"{label}: {facts[key].rstrip('.')}.")
    return " ".join(parts)


class TemplateBackend:
    """Writes profiles from facts; ``generate`` never calls a model."""

    name = "template"
    model = "none"
    chat = True

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)

    def generate(self, prompts: list[Prompt]) -> list[Generation]:
        out = []
        for prompt in prompts:
            try:
                writer = user_text if "history" in prompt.facts else item_text
                text = writer(prompt.facts)
                out.append(Generation(text=text, finish_reason="stop"))  # no tokens: none are generated
            except Exception as exc:  # noqa: BLE001 - one malformed row must not cost the batch
                out.append(failed(f"template error: {type(exc).__name__}: {exc}"))
        return out
