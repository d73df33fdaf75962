"""A soft prompt: ``K`` learnable vectors in the LLM's input-embedding space, written into reserved slots.

Plain PyTorch rather than PEFT's prompt tuning: PEFT prepends its virtual tokens at the very start of the
input and owns the forward pass, while DELRec places the vectors inside the prompt (after the sentence that
names the teacher) and, in stage 2, runs them frozen under a PEFT LoRA model; one ``nn.Parameter`` written
into the embeddings (:func:`models.llmrec.scoring.inputs_embeds`) serves both. Initialised from the
embeddings of sampled frequent vocabulary tokens (Lester et al., 2021: better than random init), so the
vectors start in the region of embedding space the LLM reads.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

FREQUENT_IDS = 5000  # BPE vocabularies list frequent tokens first: init samples below this id


class SoftPrompt(nn.Module):
    def __init__(self, n_tokens: int, dim: int, *, init: torch.Tensor | None = None) -> None:
        super().__init__()
        if n_tokens < 1 or dim < 1:
            raise ValueError(f"a soft prompt needs n_tokens >= 1 and dim >= 1, got {n_tokens}, {dim}")
        if init is not None and tuple(init.shape) != (n_tokens, dim):
            raise ValueError(f"init has shape {tuple(init.shape)}, expected {(n_tokens, dim)}")
        start = init.detach().clone().float() if init is not None else torch.randn(n_tokens, dim) * 0.02
        self.vectors = nn.Parameter(start)

    @property
    def n_tokens(self) -> int:
        return self.vectors.shape[0]

    @classmethod
    def from_vocabulary(cls, llm: nn.Module, n_tokens: int, *, seed: int = 0) -> SoftPrompt:
        """``n_tokens`` vectors copied from the input embeddings of randomly drawn frequent tokens."""
        embedding = llm.get_input_embeddings()
        high = min(FREQUENT_IDS, embedding.weight.shape[0])
        ids = torch.randint(high, (n_tokens,), generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            init = embedding(ids.to(embedding.weight.device)).float().cpu()
        return cls(n_tokens, init.shape[1], init=init)

    def forward(self) -> torch.Tensor:
        return self.vectors

    def save(self, path: Path) -> Path:
        path = Path(path)
        torch.save({"vectors": self.vectors.detach().cpu()}, path)
        return path

    @classmethod
    def load(cls, path: Path) -> SoftPrompt:
        vectors = torch.load(Path(path), map_location="cpu", weights_only=True)["vectors"]
        return cls(vectors.shape[0], vectors.shape[1], init=vectors)
