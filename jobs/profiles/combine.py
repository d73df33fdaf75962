"""LLM + template profiles: one entity's LLM text and its template text, embedded together as one profile.

The LLM knows what the facts cannot say (a film's director, a product's use), the template states the facts
the LLM may miss or get wrong (genres, rating habits); the combined profile is a third generator,
``template+<llm generator>`` (e.g. ``template+vllm:gemma3-270m:p2``), so a trainer selects it by prefix like
any other (``--generator template+``). It reuses the stored rows of both sources as of ``as_of`` (nothing
is generated again), writes only entities whose two source rows changed, and needs both to exist.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from datetime import datetime

from jobs.core import lake
from jobs.core.settings import Settings
from jobs.profiles import table as profile_table

log = logging.getLogger(__name__)
TEMPLATE = "template:"


def combined_text(llm_text: str, template_text: str) -> str:
    # The LLM's text first: the encoder truncates long inputs, and the template's facts are the longer part.
    return f"{llm_text.strip()} {template_text.strip()}"


def run(settings: Settings, *, entity: str, as_of: datetime, llm: str, progress: bool = False) -> dict:
    """Write ``template+<llm>`` profiles of ``entity`` as of ``as_of`` from the stored template rows and the
    rows whose generator starts with ``llm``; returns a summary dict."""
    from jobs.profiles import llm as models_for
    from jobs.profiles.generate import _rows, _utc

    started = time.perf_counter()
    as_of = _utc(as_of)
    base = profile_table.latest(settings, entity, as_of=as_of, generator=TEMPLATE).set_index("entity_id")
    extra = profile_table.latest(settings, entity, as_of=as_of, generator=llm).set_index("entity_id")
    if base.empty or extra.empty:
        raise LookupError(f"no {entity} profiles to combine as of {as_of.isoformat()}: "
                          f"{len(base)} template rows, {len(extra)} rows from generator {llm!r}")
    generators = sorted(extra["generator"].astype(str).unique())
    if len(generators) != 1:
        raise ValueError(f"prefix {llm!r} matches several generators {generators}: name one")
    gen_id = f"template+{generators[0]}"
    encoder = models_for.encoder(settings)
    both = sorted(set(base.index) & set(extra.index))
    hashes = {e: hashlib.sha256(json.dumps([base.at[e, "source_hash"], extra.at[e, "source_hash"],
                                            encoder.name]).encode()).hexdigest() for e in both}
    stored = profile_table.latest(settings, entity, as_of=as_of, generator=gen_id)
    previous = dict(zip(stored["entity_id"], stored["source_hash"], strict=False))
    todo = [e for e in both if previous.get(e) != hashes[e]]
    texts = [combined_text(extra.at[e, "profile_text"], base.at[e, "profile_text"]) for e in todo]
    vectors = encoder.encode(texts, progress=progress)
    from models.llm.base import Prompt

    rows = _rows([Prompt(entity_id=e) for e in todo],
                 [{"profile_text": t, "embedding": v.tolist()} for t, v in zip(texts, vectors, strict=True)],
                 hashes, generator=gen_id, as_of=as_of)
    version = None
    if todo:
        version = str(profile_table.write_version(settings, entity=entity, rows=rows).resolve())
    summary = {"entity": entity, "table": str(lake.table_path(settings, lake.profile_table(entity))),
               "generator": gen_id, "as_of": as_of.isoformat(), "entities": len(both),
               "regenerated": len(todo), "unchanged": len(both) - len(todo),
               "template_only": len(set(base.index) - set(extra.index)),
               "seconds": round(time.perf_counter() - started, 3), "version": version}
    log.info("combined profiles %s: %s", entity, summary)
    return summary
