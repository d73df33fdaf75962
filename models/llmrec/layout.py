"""Prompts and candidate titles as one packed batch: every candidate answer scored in a single forward pass.

A row is ``[left padding | prompt prefix | candidate 1 | candidate 2 | ... | candidate C | padding]``: the
candidates' answer tokens (the whole title, then the end-of-sequence token, so a title that is a prefix of
another one is not rewarded for stopping early) follow each other without gaps. Attention lets a candidate's
tokens see the prompt and the earlier tokens of the *same* candidate only, and their position ids continue
from the prompt's end, so each candidate is read exactly as if it alone followed the prompt, while the
prompt is computed once instead of ``C`` times. ``answer_source`` says which of the kept logits (the last
prompt position, then the block) predicts each answer token.

The prompt prefix is the chat template's user turn plus the assistant header when the tokenizer has a chat
template (SmolLM2-Instruct), else the plain prompt and an ``Answer:`` cue with the answer after a space
(base models such as Gemma 3 270M). A prompt may hold :data:`SOFT_MARK` once: ``n_soft`` positions are
reserved there for soft-prompt vectors (:mod:`models.llmrec.soft_prompt`); with ``n_soft=0`` the marker is
simply removed, so the text is the same with and without a soft prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from models.llmrec.text import PLAIN_ANSWER_CUE, SOFT_MARK


class Codec:
    """Turns prompt text and titles into token ids for one tokenizer."""

    def __init__(self, tokenizer, *, chat: bool | None = None, system: str | None = None) -> None:
        if tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no end-of-sequence token: answers could not be terminated")
        self.tokenizer = tokenizer
        self.chat = bool(getattr(tokenizer, "chat_template", None)) if chat is None else chat
        self.system = system
        self.eos_id = int(tokenizer.eos_token_id)
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id)

    def wrap(self, prompt: str) -> str:
        """The full prefix text: chat turn(s) plus the assistant header, or the prompt plus an answer cue."""
        if not self.chat:
            return prompt + PLAIN_ANSWER_CUE
        messages = ([{"role": "system", "content": self.system}] if self.system else [])
        messages.append({"role": "user", "content": prompt})
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def prefix_ids(self, prompt: str) -> tuple[list[int], list[int] | None]:
        """Token ids before and after the soft-prompt marker (``None`` after: the prompt has no marker)."""
        before, mark, after = self.wrap(prompt).partition(SOFT_MARK)
        if SOFT_MARK in after:
            raise ValueError(f"a prompt may hold {SOFT_MARK!r} at most once")
        ids = self.tokenizer(before, add_special_tokens=not self.chat)["input_ids"]
        rest = self.tokenizer(after, add_special_tokens=False)["input_ids"] if mark else None
        return list(ids), (list(rest) if rest is not None else None)

    def answer_ids(self, title: str) -> list[int]:
        """The answer's tokens: the whole title, then end-of-sequence."""
        text = title if self.chat else " " + title
        return list(self.tokenizer.encode(text, add_special_tokens=False)) + [self.eos_id]

    def context_length(self, prompt: str, candidates: Sequence[str], n_soft: int) -> int:
        """Positions the longest candidate reaches after the prompt: what must fit the model's context."""
        before, after = self.prefix_ids(prompt)
        prefix = len(before) + (len(after) + n_soft if after is not None else 0)
        return prefix + max((len(self.answer_ids(t)) for t in candidates), default=0)


@dataclass
class Packed:
    """One batch: ``B`` rows of ``T = P + C * L`` positions."""

    input_ids: torch.Tensor  # [B, T]; padding and soft slots hold the pad id
    soft_slots: torch.Tensor  # [B, T] bool: where soft-prompt vectors go
    allowed: torch.Tensor  # [B, T, T] bool: query may attend key
    position_ids: torch.Tensor  # [B, T]
    answer_ids: torch.Tensor  # [B, C, L] (L: the longest answer)
    answer_mask: torch.Tensor  # [B, C, L] bool: real answer tokens
    answer_source: torch.Tensor  # [B, C, L]: index into the last T - P + 1 positions' logits
    prefix_len: int  # P

    @property
    def n_candidates(self) -> int:
        return self.answer_ids.shape[1]

    @property
    def kept(self) -> int:
        """How many final positions' logits scoring needs: the prompt's last one and the candidate block."""
        return self.input_ids.shape[1] - self.prefix_len + 1


def pack(codec: Codec, prompts: Sequence[str], candidates: Sequence[Sequence[str]], *, n_soft: int = 0) -> Packed:
    """Pack ``prompts`` (row ``b`` answered by any of ``candidates[b]``) into one :class:`Packed` batch."""
    if len(prompts) != len(candidates) or not prompts:
        raise ValueError("pack needs one candidate list per prompt, and at least one prompt")
    prefixes, soft_at = [], []
    for prompt in prompts:
        before, after = codec.prefix_ids(prompt)
        if n_soft and after is None:
            raise ValueError(f"a soft prompt needs the marker {SOFT_MARK!r} in the prompt")
        rest = [] if after is None else after
        prefixes.append(before + [codec.pad_id] * (n_soft if after is not None else 0) + rest)
        soft_at.append((len(before), n_soft if after is not None else 0))
    answers = [[codec.answer_ids(t) for t in titles] for titles in candidates]
    if any(not titles for titles in answers):
        raise ValueError("every prompt needs at least one candidate")
    P = max(len(p) for p in prefixes)
    C = max(len(a) for a in answers)
    L = max(len(ids) for row in answers for ids in row)
    B, T = len(prompts), P + max(sum(len(ids) for ids in row) for row in answers)
    input_ids = torch.full((B, T), codec.pad_id, dtype=torch.long)
    soft_slots = torch.zeros(B, T, dtype=torch.bool)
    segment = torch.full((B, T), -2, dtype=torch.long)  # -2 padding, -1 prompt, c >= 0 candidate c
    step = torch.zeros(B, T, dtype=torch.long)  # prompt: position index; candidate: token index
    position_ids = torch.zeros(B, T, dtype=torch.long)
    answer_ids = torch.full((B, C, L), codec.pad_id, dtype=torch.long)
    answer_mask = torch.zeros(B, C, L, dtype=torch.bool)
    answer_source = torch.zeros(B, C, L, dtype=torch.long)
    for b, (prefix, (soft_start, soft_n), row) in enumerate(zip(prefixes, soft_at, answers, strict=True)):
        start = P - len(prefix)
        input_ids[b, start:P] = torch.tensor(prefix)
        soft_slots[b, start + soft_start:start + soft_start + soft_n] = True
        segment[b, start:P] = -1
        step[b, start:P] = torch.arange(len(prefix))
        position_ids[b, start:P] = torch.arange(len(prefix))
        lo = P
        for c, ids in enumerate(row):
            n = len(ids)
            input_ids[b, lo:lo + n] = torch.tensor(ids)
            segment[b, lo:lo + n] = c
            step[b, lo:lo + n] = torch.arange(n)
            position_ids[b, lo:lo + n] = len(prefix) + torch.arange(n)
            answer_ids[b, c, :n] = torch.tensor(ids)
            answer_mask[b, c, :n] = True
            # Token 0 is predicted at the prompt's end (kept index 0), token t at the candidate's token t - 1.
            answer_source[b, c, 1:n] = torch.arange(lo - P + 1, lo - P + n)
            lo += n
    return Packed(input_ids=input_ids, soft_slots=soft_slots, allowed=_allowed(segment, step),
                  position_ids=position_ids, answer_ids=answer_ids, answer_mask=answer_mask,
                  answer_source=answer_source, prefix_len=P)


def _allowed(segment: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """[B, T, T]: a prompt query sees earlier prompt keys; a candidate query sees the whole prompt and the
    earlier tokens of its own candidate; every position sees itself (so no row of the mask is empty)."""
    sq, sk = segment[:, :, None], segment[:, None, :]
    tq, tk = step[:, :, None], step[:, None, :]
    prompt_key = sk == -1
    from_prompt = (sq == -1) & prompt_key & (tk <= tq)
    from_candidate = (sq >= 0) & (prompt_key | ((sk == sq) & (tk <= tq)))
    own = torch.eye(segment.shape[1], dtype=torch.bool).unsqueeze(0)
    return from_prompt | from_candidate | own
