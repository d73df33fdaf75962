"""Load a causal LM and its tokenizer from a local folder, on CUDA when present, else on CPU.

fp32 on CPU (bf16 matmuls are slower there), bf16 on CUDA. A tokenizer without a pad token pads with its
end-of-sequence token; scoring never reads padded positions, so which id pads does not matter.
"""

from __future__ import annotations

from pathlib import Path

import torch


def pick_device(device: str | None = None) -> torch.device:
    """``device`` when given (``cpu``, ``cuda``, ``cuda:1``), else CUDA if available, else CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_tokenizer(path: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(Path(path))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(path: Path, *, device: str | None = None, dtype: torch.dtype | None = None):
    """``(model, tokenizer)`` from a Hugging Face folder; the model in eval mode on ``pick_device(device)``."""
    from transformers import AutoModelForCausalLM

    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} is not a Hugging Face model folder (no config.json)")
    target = pick_device(device)
    dtype = dtype or (torch.bfloat16 if target.type == "cuda" else torch.float32)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(target).eval()
    return model, load_tokenizer(path)
