"""The model half of the nightly pipeline as plain functions: train, evaluate, gate, register, promote.

``dags/ktrec_nightly.py`` calls one of these per task (the data half calls the ``run`` of jobs.ingest,
jobs.validate, jobs.split, jobs.profiles, jobs.publish.stats and jobs.publish.materialize directly). They take
the run date explicitly, so every output is keyed on the DAG run's logical date: training runs go to
``runs/<date>/<model>-<variant>`` and MLflow runs carry the key ``<dag>/<date>/<model>/<variant>``; a rerun of
the same date overwrites the run folders and reuses the MLflow runs and versions instead of adding new ones.
"""

from __future__ import annotations

import logging
import math
from datetime import date, datetime
from pathlib import Path
from typing import Any

from jobs.core import files
from jobs.core.names import NIGHTLY_DAG_ID, VARIANTS
from jobs.core.settings import REPO_ROOT, Settings

log = logging.getLogger(__name__)

SCENARIOS = REPO_ROOT / "conf"


def scenario_for(model: str, variant: str) -> Path:
    """The scenario YAML of ``model``'s ``variant`` (``conf/<model>/<variant>.yaml``)."""
    path = SCENARIOS / model / f"{variant}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no scenario for {model} ({variant}) at {path}")
    return path


def run_key(run_date: date, model: str, variant: str) -> str:
    return f"{NIGHTLY_DAG_ID}/{run_date.isoformat()}/{model}/{variant}"


def train_one(
    settings: Settings, *, model: str, variant: str, split: str, run_date: date, epochs: int | None = None,
    num_processes: int = 1,
) -> dict[str, Any]:
    """Train one (model, variant) on ``split`` (on ``num_processes`` data-parallel ranks when > 1: see
    jobs.train.distributed); returns the trainer's summary minus bulky fields."""
    from jobs.train.distributed import run

    out = settings.runs_dir / run_date.isoformat() / f"{model}-{variant}"
    summary = run(
        settings,
        scenario=scenario_for(model, variant),
        split=split,
        seed=settings.seed,
        output_dir=out,
        epochs=epochs,
        progress=False,
        num_processes=num_processes,
    )
    return {k: summary[k] for k in ("model", "variant", "metrics", "run_dir", "split")}


def evaluate(settings: Settings, *, results: list[dict[str, Any]], run_date: date) -> list[dict[str, Any]]:
    """Check each model's pair of runs and log both to MLflow; one small dict per model.

    Refuses (raises) a result whose metrics are missing or outside [0, 1], or a model whose baseline and
    KT runs used different splits: a broken evaluation must stop the run before anything is registered.
    """
    from jobs.registry.tracking import log_training_run
    from jobs.train import run_folder

    pairs: dict[str, dict[str, dict]] = {}
    for result in results:
        bad = {
            k: v
            for k, v in result["metrics"].items()
            if not (isinstance(v, float) and 0 <= v <= 1) or math.isnan(v)
        }
        if bad or "ndcg_at_10" not in result["metrics"]:
            raise ValueError(
                f"{result['model']} ({result['variant']}): invalid metrics {bad or result['metrics']}"
            )
        pairs.setdefault(result["model"], {})[result["variant"]] = result
    evaluated = []
    for model, runs in sorted(pairs.items()):
        if set(runs) != set(VARIANTS):
            raise ValueError(f"{model}: expected runs {VARIANTS}, got {sorted(runs)}")
        if runs["baseline"]["split"] != runs["kt"]["split"]:
            raise ValueError(f"{model}: baseline and KT trained on different splits")
        logged = {
            variant: log_training_run(
                settings, summary=run_folder.summary(Path(r["run_dir"])), run_key=run_key(run_date, model, variant)
            )
            for variant, r in runs.items()
        }
        evaluated.append(
            {
                "model": model,
                "kt_run_id": logged["kt"]["run_id"],
                "baseline_run_id": logged["baseline"]["run_id"],
                "kt_ndcg_at_10": runs["kt"]["metrics"]["ndcg_at_10"],
                "baseline_ndcg_at_10": runs["baseline"]["metrics"]["ndcg_at_10"],
                "run_date": run_date.isoformat(),
            }
        )
    return evaluated


def gate(settings: Settings, *, evaluated: dict[str, Any]) -> dict[str, Any]:
    """The promotion gate on the KT run, before registration."""
    from jobs.registry.gate import gate_run

    decision = gate_run(
        settings,
        model=evaluated["model"],
        run_id=evaluated["kt_run_id"],
        baseline_run_id=evaluated["baseline_run_id"],
    )
    return evaluated | {"gate": decision.as_dict()}


def register(settings: Settings, *, gated: dict[str, Any]) -> dict[str, Any]:
    """Register the KT run as the challenger and write the gate's decision on the version."""
    from jobs.registry.gate import GateDecision, record
    from jobs.registry.tracking import client, logged_model_uri, register_version

    run = client(settings).get_run(gated["kt_run_id"])
    version = register_version(
        settings,
        run={
            "run_id": gated["kt_run_id"],
            "model": gated["model"],
            "variant": "kt",
            "model_uri": logged_model_uri(run),
        },
        baseline_run_id=gated["baseline_run_id"],
    )
    record(settings, GateDecision(**(gated["gate"] | {"version": version["version"]})))
    return gated | {"version": version["version"], "registered_model": version["name"]}


def promote(settings: Settings, *, registered: dict[str, Any], enabled: bool) -> dict[str, Any]:
    """Make the version champion when the gate passed and promotion is enabled (re-checked here).

    The decision is also written to ``runs/<date>/<model>-decision.json``, the night's record of what
    was trained, how it scored against its baseline, and whether it was promoted and why.
    """
    from jobs.registry.gate import champion
    from jobs.registry.gate import promote as gated_promote

    if enabled and registered["gate"]["passed"]:
        result = gated_promote(settings, model=registered["model"], version=registered["version"])
        promoted, why = result["promoted"], result["reason"]
    else:
        promoted, why = False, "promotion disabled for this run" if not enabled else registered["gate"]["reason"]
        log.info("%s v%s stays challenger: %s", registered["model"], registered["version"], why)
    decision = {
        "model": registered["model"],
        "version": registered["version"],
        "promoted": promoted,
        "reason": why,
        "champion": champion(settings, model=registered["model"]),
        "kt_ndcg_at_10": registered["kt_ndcg_at_10"],
        "baseline_ndcg_at_10": registered["baseline_ndcg_at_10"],
    }
    files.write_json(settings.runs_dir / registered["run_date"] / f"{registered['model']}-decision.json", decision)
    return decision



CORA_CF_MODELS = ("bpr", "lightgcn", "sasrec")  # the CF models CoRA can read embeddings from


def train_cora(
    settings: Settings, *, results: list[dict[str, Any]], split: str, run_date: date, promote: bool,
    llm: str = "smollm2", max_train: int | None = 2000, max_test: int | None = 1000,
) -> dict[str, Any]:
    """CoRA on the night's split, frozen CF = the night's KT run of the first CoRA-capable model."""
    from jobs.cora import data as cora_data
    from jobs.cora import train as cora_train
    from jobs.cora.register import register_cora

    frozen = [r for r in results if r["variant"] == "kt" and r["model"] in CORA_CF_MODELS]
    if not frozen:
        raise ValueError(f"CoRA needs a trained {' or '.join(CORA_CF_MODELS)} model in this run")
    cora_data.run(settings, name=split, split=split)
    summary = cora_train.run(
        settings, data=split, llm=llm, cf_run=Path(frozen[0]["run_dir"]), max_train=max_train,
        max_test=max_test, output_dir=settings.runs_dir / run_date.isoformat() / "cora",
    )
    return register_cora(
        settings, summary=summary, run_key=f"{NIGHTLY_DAG_ID}/{run_date.isoformat()}/cora", promote=promote
    )


def train_delrec(
    settings: Settings, *, results: list[dict[str, Any]], split: str, run_date: date, promote: bool,
    llm: str = "smollm2", max_train: int | None = 128, max_test: int | None = 200,
) -> dict[str, Any]:
    """DELRec on the night's events: teacher, prompt table, training, registration as ``ktrec-delrec``.

    The teacher is the night's SASRec baseline run when the night's split is leave-one-out (its training rows
    are the training prefixes; its scenario picks an epoch on valid, never learns from it); otherwise the
    night's events get a leave-one-out split of their own (``delrec-<date>``, same cut-off) and the DELRec
    teacher scenario (fixed epochs) is trained on it. Either way no valid or test item is a teacher label.
    """
    from jobs.delrec import data as delrec_data
    from jobs.delrec import teacher
    from jobs.delrec import train as delrec_train
    from jobs.delrec.register import register_delrec
    from jobs.split.table import read_meta

    name, meta = f"delrec-{run_date.isoformat()}", read_meta(settings, split)
    sasrec = [r for r in results if r["model"] == "sasrec" and r["variant"] == "baseline" and r["split"] == split]
    if sasrec and meta.get("strategy") == "loo":
        loo, run_dir, source = split, Path(sasrec[0]["run_dir"]), "the night's sasrec baseline run"
    else:
        from jobs.split import run as make_split

        make_split(settings, strategy="loo", name=name,
                   as_of=datetime.fromisoformat(meta["as_of"]) if meta.get("as_of") else None)
        loo, run_dir, source = name, None, "conf/delrec/teacher.yaml on a leave-one-out split of the night"
    teacher.run(settings, split=loo, name=name, run_dir=run_dir, seed=settings.seed)
    delrec_data.run(settings, split=loo, teacher=name, name=name, seed=settings.seed)
    summary = delrec_train.run(settings, data=name, llm=llm, max_train=max_train, max_test=max_test,
                               seed=settings.seed, output_dir=settings.runs_dir / run_date.isoformat() / "delrec")
    decision = register_delrec(settings, summary=summary, run_key=f"{NIGHTLY_DAG_ID}/{run_date.isoformat()}/delrec",
                               promote=promote)
    return decision | {"teacher_source": source, "split": loo}


def train_align(
    settings: Settings, *, split: str, run_date: date, promote: bool, llm: str = "smollm2", budget: int = 128,
    max_test: int | None = 50,
) -> dict[str, Any]:
    """Alignment on the night's events: task samples, the systems, registration as ``ktrec-align``.

    Reads the night's split when it is leave-one-out; otherwise the night's events get a leave-one-out split of
    their own (``align-<date>``, same cut-off), as for DELRec.
    """
    from jobs.align import data as align_data
    from jobs.align import train as align_train
    from jobs.align.register import register_align
    from jobs.split.table import read_meta

    name, meta = f"align-{run_date.isoformat()}", read_meta(settings, split)
    loo = split
    if meta.get("strategy") != "loo":
        from jobs.split import run as make_split

        make_split(settings, strategy="loo", name=name,
                   as_of=datetime.fromisoformat(meta["as_of"]) if meta.get("as_of") else None)
        loo = name
    align_data.run(settings, split=loo, name=name, seed=settings.seed)
    summary = align_train.run(settings, data=name, llm=llm, budget=budget, max_test=max_test, seed=settings.seed,
                              output_dir=settings.runs_dir / run_date.isoformat() / "align")
    decision = register_align(settings, summary=summary, run_key=f"{NIGHTLY_DAG_ID}/{run_date.isoformat()}/align",
                              promote=promote)
    return decision | {"split": loo}
