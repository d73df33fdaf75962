"""The collaborative query generator: frozen CF embeddings in, per-sample low-rank weight updates out.

A small Q-Former: ``n_queries`` learnable query vectors attend to each other and cross-attend to a short
memory built from the sample's CF user embedding and item embedding (one token each, plus one for their
concatenation). The resulting queries are mixed into ``rank`` components; each component is projected,
for every adapted LLM module, to a column of ``A`` [in, r] and a row of ``B`` [r, out]. The ``B`` heads
start at zero, so a fresh generator yields ΔW = A·B = 0 and leaves the LLM's output unchanged (as LoRA
zero-initialises its B).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

Updates = dict[str, tuple[torch.Tensor, torch.Tensor]]
"""Per adapted module name: ``A`` [B, in, r] and ``B`` [B, r, out] for the B samples of a batch."""


@dataclass
class GeneratorConfig:
    cf_dim: int
    rank: int = 16
    n_queries: int = 16
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("cf_dim", "rank", "n_queries", "d_model", "n_layers", "n_heads"):
            if getattr(self, name) < 1:
                raise ValueError(f"GeneratorConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict:
        return asdict(self)


def _head_key(module_name: str) -> str:
    # ModuleDict keys may not contain dots.
    return module_name.replace(".", "__")


class CollaborativeQueryGenerator(nn.Module):
    """Maps (user embedding, item embedding) [B, cf_dim] each to :data:`Updates` for ``targets``."""

    def __init__(self, config: GeneratorConfig, *, targets: dict[str, tuple[int, int]]) -> None:
        super().__init__()
        if not targets:
            raise ValueError("the generator needs at least one target module (name -> (in, out))")
        self.config = config
        self.targets = dict(targets)
        d = config.d_model
        self.queries = nn.Parameter(torch.randn(config.n_queries, d) * 0.02)
        self.user_in = nn.Linear(config.cf_dim, d)
        self.item_in = nn.Linear(config.cf_dim, d)
        self.pair_in = nn.Linear(2 * config.cf_dim, d)
        self.memory_type = nn.Parameter(torch.zeros(3, d))
        block = nn.TransformerDecoderLayer(
            d, config.n_heads, dim_feedforward=4 * d, dropout=config.dropout, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerDecoder(block, config.n_layers)
        self.norm = nn.LayerNorm(d)
        self.to_rank = nn.Linear(config.n_queries, config.rank, bias=False)
        self.head_a = nn.ModuleDict({_head_key(n): nn.Linear(d, i) for n, (i, _) in self.targets.items()})
        self.head_b = nn.ModuleDict({_head_key(n): nn.Linear(d, o) for n, (_, o) in self.targets.items()})
        for head in self.head_b.values():
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def collaborative_queries(self, user_emb: torch.Tensor, item_emb: torch.Tensor) -> torch.Tensor:
        """Queries [B, rank, d_model] after cross-attending to the user‖item memory."""
        if user_emb.shape != item_emb.shape or user_emb.dim() != 2:
            raise ValueError(f"expected user/item embeddings [B, cf_dim], got {tuple(user_emb.shape)} "
                             f"and {tuple(item_emb.shape)}")
        memory = torch.stack(
            [self.user_in(user_emb), self.item_in(item_emb), self.pair_in(torch.cat([user_emb, item_emb], -1))],
            dim=1,
        ) + self.memory_type
        queries = self.queries.unsqueeze(0).expand(user_emb.shape[0], -1, -1)
        hidden = self.norm(self.blocks(queries, memory))  # [B, n_queries, d]
        return self.to_rank(hidden.transpose(1, 2)).transpose(1, 2)  # [B, rank, d]

    def forward(self, user_emb: torch.Tensor, item_emb: torch.Tensor) -> Updates:
        components = self.collaborative_queries(user_emb, item_emb)
        updates: Updates = {}
        for name, (fan_in, _) in self.targets.items():
            key = _head_key(name)
            # 1/sqrt(in) keeps x·A of order one whatever the hidden size (LoRA's A init has the same scale).
            a = self.head_a[key](components).transpose(1, 2) / math.sqrt(fan_in)  # [B, in, r]
            b = self.head_b[key](components)  # [B, r, out]
            updates[name] = (a, b)
        return updates
