"""LoRA on a causal LM with PEFT: low-rank updates on the attention projections (q and v by default).

:func:`with_lora` wraps the model in a ``PeftModel`` with one named adapter; :func:`add_lora` adds another
(B starts at zero, so a fresh adapter changes nothing; seed torch first for a reproducible A) and makes
it active, so two systems (e.g. DELRec and its no-soft-prompt ablation) are tuned on one loaded LLM in turn.
``model.disable_adapter()`` gives the base LLM back for zero-shot scoring. Only the active adapter's
parameters require grad.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

DEFAULT_TARGETS = ("q_proj", "v_proj")


def lora_config(*, rank: int = 8, alpha: float = 16.0, targets: Sequence[str] = DEFAULT_TARGETS,
                dropout: float = 0.0):
    from peft import LoraConfig

    if rank < 1 or alpha <= 0 or not targets:
        raise ValueError(f"LoRA needs rank >= 1, alpha > 0 and target modules: {rank}, {alpha}, {list(targets)}")
    return LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, bias="none",
                      target_modules=list(targets), task_type="CAUSAL_LM")


def with_lora(llm: nn.Module, *, name: str = "default", **config) -> nn.Module:
    """``llm`` wrapped with one LoRA adapter ``name`` (its base weights frozen)."""
    from peft import get_peft_model

    return get_peft_model(llm, lora_config(**config), adapter_name=name)


def add_lora(model: nn.Module, *, name: str, **config) -> nn.Module:
    """Add adapter ``name`` to a PEFT model and make it the active (and only trainable) one."""
    model.add_adapter(name, lora_config(**config))
    model.set_adapter(name)
    return model


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]
