"""Per-sample low-rank updates on a frozen LLM's Linear projections, through forward hooks.

For each adapted ``nn.Linear`` (chosen by module-name suffix, e.g. ``q_proj``) a forward hook adds
``scale * (x @ A_b) @ B_b`` to the output of sample ``b``, which equals running the sample through
``W + scale * (A_b B_b)^T`` without materialising, modifying or copying ``W``. The hooks exist only inside
:meth:`LowRankHooks.applied`; they come off in a ``finally`` block, so an exception in the forward pass
leaves the model exactly as it was.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial

import torch
from torch import nn

from models.cora.generator import Updates

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


def find_targets(model: nn.Module, suffixes: Sequence[str]) -> dict[str, nn.Linear]:
    """The model's Linear modules whose qualified name ends with one of ``suffixes`` (in model order)."""
    if not suffixes:
        raise ValueError("no target module suffixes given")
    found = {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and any(name == s or name.endswith("." + s) for s in suffixes)
    }
    if not found:
        raise ValueError(f"no nn.Linear module of {type(model).__name__} ends with any of {list(suffixes)}")
    return found


def _add_lowrank(
    module: nn.Module, args: tuple, output: torch.Tensor, *, a: torch.Tensor, b: torch.Tensor, scale: float
) -> torch.Tensor:
    x = args[0]
    if x.shape[0] != a.shape[0]:
        raise ValueError(f"batch of {x.shape[0]} reached a module adapted for {a.shape[0]} samples")
    squeeze = x.dim() == 2
    h = x.unsqueeze(1) if squeeze else x  # [B, T, in]
    delta = torch.matmul(torch.matmul(h.to(a.dtype), a), b)  # [B, T, r] -> [B, T, out]
    delta = delta.squeeze(1) if squeeze else delta
    return output + (scale * delta).to(output.dtype)


class LowRankHooks:
    """Attaches per-sample ``(A, B)`` updates to ``model``'s target Linear modules for one forward."""

    def __init__(self, model: nn.Module, *, suffixes: Sequence[str] = DEFAULT_TARGETS, scale: float) -> None:
        self.targets = find_targets(model, suffixes)
        self.scale = float(scale)

    def shapes(self) -> dict[str, tuple[int, int]]:
        """``name -> (in_features, out_features)`` for every adapted module."""
        return {name: (m.in_features, m.out_features) for name, m in self.targets.items()}

    @contextmanager
    def applied(self, updates: Updates) -> Iterator[None]:
        missing = set(self.targets) - set(updates)
        if missing:
            raise KeyError(f"no update for adapted modules {sorted(missing)[:3]}...")
        handles = []
        try:
            for name, module in self.targets.items():
                a, b = updates[name]
                hook = partial(_add_lowrank, a=a, b=b, scale=self.scale)
                handles.append(module.register_forward_hook(hook))
            yield
        finally:
            for handle in handles:
                handle.remove()
