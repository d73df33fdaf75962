"""``ktrec profiles``: write LLM (or template) profiles of users or items into the lake, incrementally.

Steps: read the lake as of ``as_of`` (interactions with event_ts <= as_of, items, users) → build one
prompt per entity (:mod:`models.llm.prompts`) → hash each prompt's inputs with the generator (backend,
model, prompt version, token allowance, embedder) → generate only entities whose hash differs from their
latest stored profile by the same generator (all with ``full``), taking what the profile cache
(:mod:`jobs.profiles.cache`) already holds for a hash, in batches, validating and retrying bad rows once
(:mod:`models.llm.validate`) → embed the accepted texts → append them as a new table version with
``event_timestamp = as_of``. Rows that fail twice are never written: they are counted in the summary and
listed in the version's ``_failed.json``. A later run retries a failure only when it may turn out
otherwise: the entity's inputs changed (a new hash), or the failure was the backend's (a timeout, an HTTP
error). A rejected text (:data:`models.llm.validate.REPRODUCIBLE`: greedy decoding writes it again) waits
for new inputs, ``retry_rejected`` or ``full``; so an incremental refresh regenerates the changed entities
and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from jobs.core import lake
from jobs.core.settings import Settings
from jobs.profiles import cache as profile_cache
from jobs.profiles import inputs as profile_inputs
from jobs.profiles import table as profile_table
from models.llm.base import Backend, Generation, Prompt
from models.llm.prompts import PROMPT_VERSION, item_prompt, user_prompt
from models.llm.validate import generate_checked, reproducible

log = logging.getLogger(__name__)


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def build_prompts(settings: Settings, *, entity: str, as_of: datetime, backend: Backend) -> list[Prompt]:
    items = profile_inputs.load_items(settings)
    if entity == "item":
        return [item_prompt(item_id=item_id, row=row) for item_id, row in sorted(items.items())]
    users = profile_inputs.load_users(settings)
    histories = profile_inputs.load_histories(settings, as_of=as_of, items=items)
    return [
        user_prompt(
            user_id=user_id,
            attributes=users.get(user_id, {}),
            history=history,
            count_tokens=backend.count_tokens,
            token_budget=settings.llm.prompt_token_budget,
        )
        for user_id, history in sorted(histories.items())
    ]


def generator_id(backend: Backend) -> str:
    """``<backend>:<model>:<prompt version>``; a model folder is named by its last path part."""
    return f"{backend.name}:{Path(backend.model).name or backend.model}:{PROMPT_VERSION}"


def source_hash(prompt: Prompt, *, generator: str, chat: bool, max_new_tokens: int, embedder: str) -> str:
    payload = {
        "messages": prompt.messages if chat else None,
        "completion": None if chat else prompt.completion,
        "facts": prompt.facts,
        "generator": generator,
        "max_new_tokens": max_new_tokens,
        "embedder": embedder,
    }
    blob = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()


def _generate(
    backend: Backend, prompts: list[Prompt], *, settings: Settings, progress: bool, on_batch=None,
    deadline: float | None = None,
) -> tuple[list[Generation], int, float]:
    """Generate ``prompts`` in batches; ``on_batch(prompts, generations)`` sees each finished batch (the cache
    keeps it, so an interrupted run loses at most one batch). Past ``deadline`` (epoch seconds) no further
    batch starts (the first always runs): the result then covers a prefix of ``prompts``."""
    from tqdm import tqdm

    results: list[Generation] = []
    retried = 0
    started = time.perf_counter()
    size = max(1, settings.llm.batch_size)
    with tqdm(
        total=len(prompts), desc=f"profiles ({backend.name})", unit="profile", disable=not progress
    ) as bar:
        for start in range(0, len(prompts), size):
            if start and deadline is not None and time.time() > deadline:
                log.warning("deadline reached: %d of %d profiles left ungenerated", len(prompts) - start, len(prompts))
                break
            batch, n_retried = generate_checked(
                backend, prompts[start : start + size], max_new_tokens=settings.llm.max_new_tokens
            )
            results += batch
            retried += n_retried
            if on_batch is not None:
                on_batch(prompts[start : start + size], batch)
            bar.update(len(batch))
    return results, retried, time.perf_counter() - started


def _rows(
    prompts: list[Prompt], made: list[dict], hashes: dict[str, str], *, generator: str, as_of: datetime
) -> pa.Table:
    """Lake rows of ``prompts`` from their generated (or cached) text and embedding."""
    created = datetime.now(UTC)
    return pa.table(
        {
            "entity_id": [p.entity_id for p in prompts],
            "profile_text": [m["profile_text"] for m in made],
            "embedding": [list(m["embedding"]) for m in made],
            "source_hash": [hashes[p.entity_id] for p in prompts],
            "generator": [generator] * len(prompts),
            "event_timestamp": [as_of] * len(prompts),
            "created_timestamp": [created] * len(prompts),
        },
        schema=lake.PROFILE_SCHEMA,
    )


def _pca_sidecar(settings: Settings, *, entity: str, new: pa.Table) -> dict[str, bytes]:
    """With embed.pca_dim: a PCA fitted on every entity's latest embedding, saved in this version."""
    from models.embed import fit_pca, pca_bytes

    if not settings.embed.pca_dim:
        return {}
    old = profile_table.latest(settings, entity)
    fresh = set(new.column("entity_id").to_pylist())
    vectors = [
        np.asarray(v, dtype=np.float32)
        for eid, v in zip(old["entity_id"], old["embedding"], strict=False)
        if eid not in fresh
    ] + [np.asarray(v, dtype=np.float32) for v in new.column("embedding").to_pylist()]
    if len(vectors) <= settings.embed.pca_dim:
        log.warning("only %d profiles: too few to fit a %d-d PCA", len(vectors), settings.embed.pca_dim)
        return {}
    return {profile_table.PCA_FILE: pca_bytes(fit_pca(np.stack(vectors), settings.embed.pca_dim))}


def _hashes(settings: Settings, prompts: list[Prompt], *, generator: str, chat: bool, embedder: str) -> dict:
    """Each entity's content hash: its prompt inputs plus everything that would change its profile."""
    return {
        p.entity_id: source_hash(p, generator=generator, chat=chat, embedder=embedder,
                                 max_new_tokens=settings.llm.max_new_tokens)
        for p in prompts
    }


def _settled_failures(failures: list[dict], hashes: dict[str, str], generator: str) -> dict[str, dict]:
    """Of the current version's ``failures``, those a new attempt would repeat: by this generator, for the same
    inputs (``hashes``: the entities due), with a reproducible reason. By entity id."""
    return {
        f["entity_id"]: f for f in failures
        if f.get("generator") == generator and hashes.get(f["entity_id"]) == f["source_hash"]
        and reproducible(f["reason"])
    }


def _throughput(gens: list[Generation], todo: list[Prompt], seconds: float) -> dict:
    tokens = sum(g.generated_tokens or 0 for g in gens)
    return {
        "generated_tokens": tokens,
        "generation_seconds": round(seconds, 3),
        "profiles_per_s": round(len(todo) / seconds, 3) if seconds > 0 and todo else None,
        "tokens_per_s": round(tokens / seconds, 2) if seconds > 0 and tokens else None,
    }


def run(
    settings: Settings,
    *,
    entity: str,
    backend: str | None = None,
    as_of: datetime,
    full: bool = False,
    generator: Backend | None = None,
    progress: bool = False,
    cache_only: bool = False,
    deadline: float | None = None,
    retry_rejected: bool = False,
) -> dict:
    """Generate changed (or, with ``full``, all) profiles as of ``as_of``; returns a summary dict.
    ``cache_only`` generates nothing: it writes the changed entities the profile cache holds (a run cut
    short keeps what it generated); the others stay as they are and are counted as ``missing``. Past
    ``deadline`` (epoch seconds) no further batch starts: what is generated by then is written, the rest is
    missing (and generated by a later run). ``retry_rejected`` also retries texts that were rejected for the
    same inputs before (see the module docstring)."""
    from jobs.profiles import llm as models_for

    started = time.perf_counter()
    as_of = _utc(as_of)
    table = lake.profile_table(entity)
    llm = generator or models_for.backend(settings, backend)
    try:
        gen_id = generator_id(llm)
        encoder = models_for.encoder(settings)
        prompts = build_prompts(settings, entity=entity, as_of=as_of, backend=llm)
        hashes = _hashes(settings, prompts, generator=gen_id, chat=llm.chat, embedder=encoder.name)
        # Only this generator's rows: a template run never regenerates because an LLM wrote last (and back).
        stored = profile_table.latest(settings, entity, as_of=as_of, generator=gen_id)
        previous = dict(zip(stored["entity_id"], stored["source_hash"], strict=False))
        todo = [p for p in prompts if full or previous.get(p.entity_id) != hashes[p.entity_id]]
        earlier_failures = profile_table.failed_rows(settings, entity)
        settled = {} if full or retry_rejected else _settled_failures(
            earlier_failures, {p.entity_id: hashes[p.entity_id] for p in todo}, gen_id)
        todo = [p for p in todo if p.entity_id not in settled]
        cache_file = profile_cache.path(settings, entity=entity, generator=gen_id)
        cached = {} if full else profile_cache.lookup(cache_file, {hashes[p.entity_id] for p in todo})
        fresh = [p for p in todo if hashes[p.entity_id] not in cached]
        if cache_only:
            fresh = []
        new_rows: list[dict] = []

        def keep(batch: list[Prompt], made: list[Generation]) -> None:
            ok = [(p, g) for p, g in zip(batch, made, strict=True) if g.ok]
            vectors = encoder.encode([g.text for _, g in ok], progress=False) if ok else []
            rows = [{"source_hash": hashes[p.entity_id], "profile_text": g.text, "embedding": v.tolist(),
                     "generated_tokens": g.generated_tokens} for (p, g), v in zip(ok, vectors, strict=True)]
            profile_cache.store(cache_file, rows)
            new_rows.extend(rows)

        gens, retried, gen_seconds = _generate(llm, fresh, settings=settings, progress=progress, on_batch=keep,
                                               deadline=deadline)
        fresh = fresh[: len(gens)]
    finally:
        if generator is None and hasattr(llm, "close"):
            llm.close()
    by_hash = {r["source_hash"]: r for r in new_rows} | cached
    written = [p for p in todo if hashes[p.entity_id] in by_hash]
    rows = _rows(written, [by_hash[hashes[p.entity_id]] for p in written], hashes, generator=gen_id, as_of=as_of)
    failures = [
        {"entity_id": p.entity_id, "reason": g.failure, "source_hash": hashes[p.entity_id], "generator": gen_id}
        for p, g in zip(fresh, gens, strict=False)
        if not g.ok
    ]
    # Kept in the next version: the failures not retried, and other generators' (one sidecar per table).
    kept = list(settled.values()) + [f for f in earlier_failures if f.get("generator") not in (gen_id, None)]
    version = None
    if todo or not lake.exists(settings, table):
        sidecars = {profile_table.FAILED_FILE: json.dumps(kept + failures, indent=1).encode()}
        sidecars |= _pca_sidecar(settings, entity=entity, new=rows)
        version = str(
            profile_table.write_version(settings, entity=entity, rows=rows, sidecars=sidecars).resolve()
        )
    summary = {
        "entity": entity, "table": str(lake.table_path(settings, table)), "generator": gen_id,
        "as_of": as_of.isoformat(), "entities": len(prompts), "regenerated": rows.num_rows,
        "unchanged": len(prompts) - len(todo) - len(settled), "rejected_before": len(settled),
        "generated": len(fresh), "from_cache": len(cached),
        "missing": len(todo) - len(written) - len(failures),
        "failed": len(failures), "retried": retried,
        "failure_reasons": dict(Counter(f["reason"].split(":")[0] for f in failures)),
        **_throughput(gens, fresh, gen_seconds), "seconds": round(time.perf_counter() - started, 3),
        "version": version,
    }
    log.info("profiles %s: %s", entity, summary)
    return summary
