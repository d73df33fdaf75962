"""What every profile generator backend shares: the prompt and result types and the interface.

A backend turns a batch of :class:`Prompt` into one :class:`Generation` per prompt, in order. A row that
fails carries ``failure`` (a short reason) instead of text; one bad row never costs the batch. Prompts
come in two forms: chat ``messages`` for instruction-tuned models, and a plain ``completion`` prefix for
base models (e.g. Gemma 3 270M base), whose continuation is read together with the prefix's ``lead``.
The structured ``facts`` are what the no-LLM template backend writes from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Prompt:
    entity_id: str
    messages: tuple[dict[str, str], ...] = ()
    completion: str = ""
    # The tail of ``completion`` that belongs to the profile text ("Toy Story (1995) is a").
    lead: str = ""
    facts: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    max_new_tokens: int | None = None


@dataclass(frozen=True)
class Generation:
    text: str | None = None
    failure: str | None = None
    # "stop" (the model ended), "length" (hit max_new_tokens) or None when the backend cannot tell.
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    generated_tokens: int | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None and self.text is not None


@runtime_checkable
class Backend(Protocol):
    name: str
    model: str
    # True when the model follows chat messages; False means the completion prefix is used.
    chat: bool

    def generate(self, prompts: list[Prompt]) -> list[Generation]:
        """One Generation per prompt, same order; never raises for a single bad row."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` costs this model (used to keep prompts within the budget)."""
        ...


def failed(reason: str) -> Generation:
    return Generation(failure=reason)


def approx_tokens(text: str) -> int:
    """A tokenizer-free estimate (about four characters per token) for backends without a tokenizer."""
    return (len(text) + 3) // 4


# Base models ramble past the paragraph they were asked to continue; a blank line ends a completion.
COMPLETION_STOP = "\n\n"


def as_profile_text(prompt: Prompt, generated: str, *, chat: bool) -> str:
    """Chat output is the profile; a completion is read together with the prompt's ``lead``."""
    if chat:
        return generated
    return prompt.lead + generated.split(COMPLETION_STOP)[0]
