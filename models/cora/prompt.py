"""The Yes/No prompt: its text template, and its tokenisation for a given LLM folder.

The template's pieces are constants so the Spark job (jobs/cora/data.py, with ``concat``) and the
scorer for new pairs (:func:`render`) produce the same text. No collaborative tokens go into the prompt:
CoRA's collaborative signal travels only through the weight updates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the Spark job imports the template without paying for torch
    import torch

PREFIX = "The user enjoyed these titles: "
TITLE_SEP = "; "
NO_HISTORY = "(none yet)"
MIDDLE = '.\nWill the user enjoy "'
SUFFIX = '"? Answer Yes or No.'
PLAIN_ANSWER_CUE = "\nAnswer:"


def render(history_titles: Sequence[str], target_title: str) -> str:
    """The prompt for one (user history, target) pair, identical to the Spark job's ``prompt`` column."""
    history = TITLE_SEP.join(history_titles) if len(history_titles) else NO_HISTORY
    return f"{PREFIX}{history}{MIDDLE}{target_title}{SUFFIX}"


class PromptCodec:
    """Turns prompts into left-padded token tensors ending at the answer position, and finds Yes/No ids.

    Tokenizers with a chat template (SmolLM2-Instruct) get the prompt as a user turn plus the assistant
    header, and the answer is the bare word; others get a plain ``Answer:`` cue and the answer carries
    a leading space, as the model would write it.
    """

    def __init__(self, tokenizer, *, max_length: int = 160) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.chat = bool(getattr(tokenizer, "chat_template", None))
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.yes_id = self._answer_id("Yes")
        self.no_id = self._answer_id("No")

    def _answer_id(self, word: str) -> int:
        for text in ([word, " " + word] if self.chat else [" " + word, word]):
            ids = self.tokenizer.encode(text, add_special_tokens=False)
            if len(ids) == 1:
                return int(ids[0])
        raise ValueError(f"the tokenizer has no single token for {word!r}; pick another LLM")

    def text(self, prompt: str) -> str:
        if self.chat:
            messages = [{"role": "user", "content": prompt}]
            return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return prompt + PLAIN_ANSWER_CUE

    def encode(self, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        """``input_ids`` and ``attention_mask`` [B, T], left-padded; over-long prompts lose their start."""
        tok = self.tokenizer
        tok.padding_side, tok.truncation_side = "left", "left"
        batch = tok(
            [self.text(p) for p in prompts], return_tensors="pt", padding=True, truncation=True,
            max_length=self.max_length, add_special_tokens=not self.chat,
        )
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}

    def lengths(self, prompts: Sequence[str]) -> list[int]:
        """Token counts (before truncation), used to batch prompts of similar length together."""
        texts = [self.text(p) for p in prompts]
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=not self.chat)["input_ids"]]
