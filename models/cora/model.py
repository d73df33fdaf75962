"""CoRA: a frozen causal LLM answering "Yes"/"No", steered per sample by collaborative low-rank updates.

The score of a (user, item) prompt is ``P(Yes) / (P(Yes) + P(No))`` at the answer position, i.e.
``sigmoid(logit_yes - logit_no)``; :func:`answer_logits` returns that difference so the loss is plain
binary cross-entropy with logits. Prompts are left-padded, so the answer position is the last one for
every row, and position ids are counted from each row's first real token (as ``generate`` does).

Only the generator trains: the LLM is frozen (``requires_grad`` off, kept in eval mode) and the CF
embeddings arrive as plain tensors from :mod:`models.cora.frozen_cf`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from models.cora.adapter import DEFAULT_TARGETS, LowRankHooks
from models.cora.generator import CollaborativeQueryGenerator, GeneratorConfig


@dataclass
class CoRAConfig:
    rank: int = 16
    alpha: float = 32.0
    target_suffixes: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))
    n_queries: int = 16
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.rank < 1 or self.alpha <= 0:
            raise ValueError(f"rank must be >= 1 and alpha > 0, got rank={self.rank} alpha={self.alpha}")
        if not self.target_suffixes:
            raise ValueError("target_suffixes must name at least one projection (e.g. q_proj)")
        self.target_suffixes = list(self.target_suffixes)

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    def generator_config(self, cf_dim: int) -> GeneratorConfig:
        return GeneratorConfig(
            cf_dim=cf_dim, rank=self.rank, n_queries=self.n_queries, d_model=self.d_model,
            n_layers=self.n_layers, n_heads=self.n_heads, dropout=self.dropout,
        )

    def to_dict(self) -> dict:
        return asdict(self)


def answer_logits(
    llm: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, *, yes_id: int, no_id: int
) -> torch.Tensor:
    """``logit(Yes) - logit(No)`` [B] at the last position of left-padded prompts."""
    if bool((attention_mask[:, -1] == 0).any()):
        raise ValueError("prompts must be left-padded: the last position is padding for some rows")
    position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    out = llm(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
        logits_to_keep=1, use_cache=False,
    )
    last = out.logits[:, -1, :].float()
    return last[:, yes_id] - last[:, no_id]


class CoRA(nn.Module):
    """The frozen ``llm`` plus a trainable :class:`CollaborativeQueryGenerator`."""

    def __init__(self, llm: nn.Module, *, cf_dim: int, yes_id: int, no_id: int, config: CoRAConfig) -> None:
        super().__init__()
        llm.requires_grad_(False)
        llm.eval()
        self.llm = llm
        self.config = config
        self.yes_id, self.no_id = int(yes_id), int(no_id)
        self.hooks = LowRankHooks(llm, suffixes=config.target_suffixes, scale=config.scale)
        self.generator = CollaborativeQueryGenerator(config.generator_config(cf_dim), targets=self.hooks.shapes())

    def train(self, mode: bool = True) -> CoRA:
        super().train(mode)
        self.llm.eval()  # frozen: no dropout, whatever the generator does
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        return list(self.generator.parameters())

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        user_emb: torch.Tensor,
        item_emb: torch.Tensor,
    ) -> torch.Tensor:
        """``logit(Yes) - logit(No)`` [B], each row under its own collaborative update."""
        updates = self.generator(user_emb, item_emb)
        with self.hooks.applied(updates):
            return answer_logits(self.llm, input_ids, attention_mask, yes_id=self.yes_id, no_id=self.no_id)

    def base_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The frozen LLM alone (the zero-shot baseline)."""
        return answer_logits(self.llm, input_ids, attention_mask, yes_id=self.yes_id, no_id=self.no_id)
