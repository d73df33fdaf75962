"""MLflow for the LLM methods' trained add-ons (CoRA's generator, DELRec's soft prompt + LoRA): one path.

:func:`register_adapter` logs one run (params, metrics, artifact folders, the summary), makes it a version
of ``registered`` whose source is the run's first artifact folder, sets ``challenger``, gates it with the
method's ``decide(metrics, champion_value)`` (built on :func:`jobs.registry.gate.decide`, the one rule) and,
when it passes and ``promote``, sets ``champion``. The decision is written on the version as tags.
Idempotent by run key, like :func:`jobs.registry.tracking.log_training_run`: a rerun reuses the run and its
version.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobs.core.settings import Settings
from jobs.registry import gate
from jobs.registry.tracking import CHALLENGER, CHAMPION, RUN_KEY, client, experiment_id, find_run

log = logging.getLogger(__name__)


def log_once(settings: Settings, *, run_key: str, model: str, params: dict, metrics: dict[str, float],
             artifacts: dict[str, Path], summary: dict) -> str:
    """The id of the finished run under ``run_key``, logging it first when there is none."""
    import mlflow

    run = find_run(settings, run_key)
    if run is not None:
        return run.info.run_id
    mlflow_client = client(settings)
    with mlflow.start_run(experiment_id=experiment_id(settings, mlflow_client), run_name=run_key,
                          tags={RUN_KEY: run_key, "ktrec.model": model}) as active:
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        for name, folder in artifacts.items():
            mlflow.log_artifacts(str(folder), artifact_path=name)
        mlflow.log_dict(json.loads(json.dumps(summary, default=str)), "metrics.json")
        return active.info.run_id


def _version(mlflow_client, registered: str, run_id: str, *, artifact: str, description: str):
    from mlflow.exceptions import MlflowException

    versions = mlflow_client.search_model_versions(f"name = '{registered}' and run_id = '{run_id}'")
    if versions:
        return versions[0]
    try:
        mlflow_client.create_registered_model(registered, description=description)
    except MlflowException:
        pass  # already registered
    source = f"{mlflow_client.get_run(run_id).info.artifact_uri}/{artifact}"
    return mlflow_client.create_model_version(registered, source=source, run_id=run_id)


def register_adapter(settings: Settings, *, registered: str, description: str, run_key: str, model: str,
                     params: dict, metrics: dict[str, float], artifacts: dict[str, Path], summary: dict,
                     gate_metric: str, decide: Callable[[dict, float | None], tuple[bool, str]],
                     promote: bool = True) -> dict[str, Any]:
    """Log, register as challenger, gate and (when ``promote``) make champion; returns the decision."""
    mlflow_client = client(settings)
    run_id = log_once(settings, run_key=run_key, model=model, params=params, metrics=metrics, artifacts=artifacts,
                      summary=summary)
    version = _version(mlflow_client, registered, run_id, artifact=next(iter(artifacts)), description=description)
    mlflow_client.set_registered_model_alias(registered, CHALLENGER, version.version)
    champion = gate.alias_version(mlflow_client, registered, CHAMPION)
    champion_value = None
    if champion is not None and champion.run_id != run_id:
        champion_value = mlflow_client.get_run(champion.run_id).data.metrics.get(gate_metric)
    passed, reason = decide(metrics, champion_value)
    if champion is not None and champion.run_id == run_id:
        passed, reason = False, "already the champion"
    gate.tag_decision(mlflow_client, registered, version.version, passed, reason)
    promoted = passed and promote
    if promoted:
        mlflow_client.set_registered_model_alias(registered, CHAMPION, version.version)
    log.info("%s v%s: %s (%s)", registered, version.version, "champion" if promoted else "challenger", reason)
    return {"model": registered, "version": str(version.version), "run_id": run_id, "passed": passed,
            "promoted": promoted, "reason": reason, gate_metric: metrics.get(gate_metric)}
