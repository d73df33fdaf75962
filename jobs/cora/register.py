"""CoRA adapters in the MLflow registry, gated on test AUC.

``register_cora`` logs one ``ktrec cora train`` run (params, AUC/UAUC per system and slice, the adapter
folder, its metrics.json), registers the adapter as a new version of ``ktrec-cora`` with the alias
``challenger`` and gates it: it becomes ``champion`` only if its test AUC beats every baseline of the same
run (zero-shot LLM, plain LoRA, CF score) AND the current champion's test AUC by the promotion margin.
The decision is written on the version as tags, as for the CF models (:mod:`jobs.registry.gate`).
Idempotent by run key, like :func:`jobs.registry.tracking.log_training_run`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from jobs.core.settings import Settings
from jobs.registry import gate
from jobs.registry.tracking import CHALLENGER, CHAMPION, RUN_KEY, client, experiment_id, find_run

log = logging.getLogger(__name__)

REGISTERED = "ktrec-cora"
GATE_METRIC = "cora_all_auc"


def flat_metrics(metrics: dict[str, dict[str, dict]]) -> dict[str, float]:
    """``{"cora": {"all": {"auc": .7}}}`` -> ``{"cora_all_auc": .7}``; slices without both classes drop out."""
    return {
        f"{system}_{slice_}_{name}": float(value)
        for system, slices in metrics.items()
        for slice_, values in slices.items()
        for name, value in values.items()
        if name in ("auc", "uauc") and value is not None
    }


def decide(metrics: dict[str, float], *, champion_auc: float | None, margin: float) -> tuple[bool, str]:
    """The registry's one gate (:func:`jobs.registry.gate.decide`) on CoRA's test AUC: beat every baseline of
    the run, then the champion by ``margin``."""
    baselines = {f"{system} baseline": metrics.get(f"{system}_all_auc") for system in ("zero_shot", "lora", "cf")}
    return gate.decide("CoRA AUC", metrics.get(GATE_METRIC), baselines=baselines, champion=champion_auc,
                       margin=margin)


def register_cora(settings: Settings, *, summary: dict[str, Any], run_key: str, promote: bool = True) -> dict:
    """Log, register as challenger, gate and (when ``promote``) make champion; returns the decision."""
    import mlflow

    mlflow_client = client(settings)
    metrics = flat_metrics(summary["metrics"])
    run = find_run(settings, run_key)
    if run is None:
        with mlflow.start_run(experiment_id=experiment_id(settings, mlflow_client), run_name=run_key,
                              tags={RUN_KEY: run_key, "ktrec.model": "cora"}) as active:
            mlflow.log_params({"llm": Path(summary["llm"]).name, "n_train": summary["n_train"],
                               "n_test": summary["n_test"], "cf_source": summary.get("cf_source", ""),
                               **{f"cora.{k}": v for k, v in summary["cora_config"].items()}})
            mlflow.log_metrics(metrics)
            mlflow.log_artifacts(summary["adapter_path"], artifact_path="adapter")
            mlflow.log_dict(json.loads(json.dumps(summary, default=str)), "metrics.json")
            run_id = active.info.run_id
    else:
        run_id = run.info.run_id
    versions = mlflow_client.search_model_versions(f"name = '{REGISTERED}' and run_id = '{run_id}'")
    version = versions[0] if versions else _new_version(mlflow_client, run_id)
    mlflow_client.set_registered_model_alias(REGISTERED, CHALLENGER, version.version)

    champion = gate.alias_version(mlflow_client, REGISTERED, CHAMPION)
    champion_auc = None
    if champion is not None and champion.run_id != run_id:
        champion_auc = mlflow_client.get_run(champion.run_id).data.metrics.get(GATE_METRIC)
    passed, reason = decide(metrics, champion_auc=champion_auc, margin=settings.mlflow.promotion_margin)
    if champion is not None and champion.run_id == run_id:
        passed, reason = False, "already the champion"
    gate.tag_decision(mlflow_client, REGISTERED, version.version, passed, reason)
    promoted = passed and promote
    if promoted:
        mlflow_client.set_registered_model_alias(REGISTERED, CHAMPION, version.version)
    log.info("%s v%s: %s (%s)", REGISTERED, version.version, "champion" if promoted else "challenger", reason)
    return {"model": REGISTERED, "version": str(version.version), "run_id": run_id, "passed": passed,
            "promoted": promoted, "reason": reason, "auc": metrics.get(GATE_METRIC)}


def _new_version(mlflow_client, run_id: str):
    """A version whose source is the run's adapter folder (an adapter, not an MLflow model flavour)."""
    from mlflow.exceptions import MlflowException

    try:
        mlflow_client.create_registered_model(REGISTERED, description="CoRA adapters for a frozen LLM")
    except MlflowException:
        pass  # already registered
    source = f"{mlflow_client.get_run(run_id).info.artifact_uri}/adapter"
    return mlflow_client.create_model_version(REGISTERED, source=source, run_id=run_id)
