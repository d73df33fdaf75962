"""MLflow tracking and registration of training runs.

``log_training_run`` turns one training summary (the dict ``jobs.train.scenario_run.run`` returns, or the same
rebuilt from a run folder by :func:`jobs.train.run_folder.summary`) into an MLflow run: params and the
scenario YAML, per-epoch history and test metrics, the lake/split/profile versions as dataset inputs
with digests, the model as a top-k pyfunc (:mod:`models.serving`) and plots. ``register_version`` makes
the run's model a new version of the registered model ``ktrec-<model>`` with the alias ``challenger``.
Promotion lives in :mod:`jobs.registry.gate`.

Both are idempotent: a run carries a ``ktrec.run_key`` tag (e.g. ``ktrec_nightly/2026-11-22/bpr/kt``)
and a finished run with the same key is returned instead of logged again; a run already registered
returns its existing version. A crashed run is left FAILED and does not count.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from jobs.core.settings import Settings
from jobs.train import run_folder

log = logging.getLogger(__name__)

EXPERIMENT = "ktrec"
RUN_KEY = "ktrec.run_key"
CHALLENGER, CHAMPION = "challenger", "champion"
GATE_METRIC = "test_ndcg_at_10"


def registered_name(model: str) -> str:
    """One registered model per CF model name: ``bpr`` -> ``ktrec-bpr``."""
    return model if model.startswith("ktrec-") else f"ktrec-{model}"


def metric_key(name: str) -> str:
    """MLflow-safe metric name: ``NDCG@10`` -> ``ndcg_at_10``."""
    return name.strip().lower().replace("@", "_at_").replace(" ", "_")


def client(settings: Settings):
    """An MlflowClient on the settings' tracking/registry URI (also set for the fluent API)."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(settings.mlflow_uri)
    mlflow.set_registry_uri(settings.mlflow_uri)
    return MlflowClient(tracking_uri=settings.mlflow_uri, registry_uri=settings.mlflow_uri)


def experiment_id(settings: Settings, mlflow_client, name: str = EXPERIMENT) -> str:
    found = mlflow_client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    # A tracking server decides where artifacts go; the embedded store uses KTREC_HOME/mlartifacts.
    served = settings.mlflow_uri.startswith(("http://", "https://"))
    location = None if served else settings.mlflow_artifacts.as_uri()
    return mlflow_client.create_experiment(name, artifact_location=location)


def find_run(settings: Settings, run_key: str) -> Any | None:
    """The finished run logged under ``run_key``, if any."""
    mlflow_client = client(settings)
    runs = mlflow_client.search_runs(
        [experiment_id(settings, mlflow_client)],
        filter_string=f"tags.`{RUN_KEY}` = '{run_key}' and attributes.status = 'FINISHED'",
        max_results=1,
    )
    return runs[0] if runs else None


def log_training_run(
    settings: Settings,
    *,
    summary: dict[str, Any],
    run_key: str | None = None,
    model: Any = None,
    train_data: Any = None,
) -> dict[str, Any]:
    """Log one training run to MLflow; returns ``{"run_id", "model_uri", "metrics", ...}``.

    ``model``/``train_data`` are the trained Recommender and its TrainData; when omitted they are
    loaded from ``summary["model_path"]`` (see :func:`jobs.registry.artifacts.load_trained`).
    """
    import mlflow

    from jobs.registry import artifacts, plots
    run_key = run_key or f"manual/{Path(summary['run_dir']).name}/{summary['model']}/{summary['variant']}"
    existing = find_run(settings, run_key)
    if existing is not None:
        log.info("run %s already logged as %s", run_key, existing.info.run_id)
        return _run_result(existing, reused=True)
    if model is None or train_data is None:
        model, train_data = artifacts.load_trained(settings, summary=summary)
    mlflow_client = client(settings)
    metrics = {f"test_{metric_key(k)}": float(v) for k, v in summary["metrics"].items()}
    history = run_folder.history(summary)
    tags = {
        RUN_KEY: run_key,
        "ktrec.model": summary["model"],
        "ktrec.variant": summary["variant"],
        "ktrec.split": summary["split"],
        "ktrec.split_digest": artifacts.split_digest(settings, summary["split"]),
    }
    with mlflow.start_run(
        experiment_id=experiment_id(settings, mlflow_client),
        run_name=f"{summary['model']}-{summary['variant']}",
        tags=tags,
    ) as run:
        mlflow.log_params(artifacts.flat_params(summary))
        if summary.get("scenario_path"):
            mlflow.log_artifact(summary["scenario_path"], artifact_path="scenario")
        for step, epoch in enumerate(history):
            mlflow.log_metrics(
                {
                    metric_key(k): float(v)
                    for k, v in epoch.items()
                    if k != "epoch" and isinstance(v, (int, float))
                },
                step=int(epoch.get("epoch", step)),
            )
        mlflow.log_metrics(metrics)
        artifacts.log_dataset_inputs(settings, summary=summary)
        info = artifacts.log_recommender(model, train_data, name="model")
        plots.log_plots(history=history, metrics=metrics)
        run_id = run.info.run_id
    return _run_result(mlflow_client.get_run(run_id), model_uri=info.model_uri)


def _run_result(run: Any, *, model_uri: str | None = None, reused: bool = False) -> dict[str, Any]:
    uri = model_uri or logged_model_uri(run)
    return {
        "run_id": run.info.run_id,
        "model_uri": uri,
        "metrics": dict(run.data.metrics),
        "model": run.data.tags.get("ktrec.model"),
        "variant": run.data.tags.get("ktrec.variant"),
        "split_digest": run.data.tags.get("ktrec.split_digest"),
        "reused": reused,
    }


def logged_model_uri(run: Any) -> str:
    """MLflow 3 records models logged in a run as run outputs (LoggedModel ids)."""
    outputs = getattr(run, "outputs", None)
    model_outputs = getattr(outputs, "model_outputs", None) or []
    if model_outputs:
        return f"models:/{model_outputs[0].model_id}"
    return f"runs:/{run.info.run_id}/model"


def register_version(
    settings: Settings, *, run: dict[str, Any], baseline_run_id: str | None = None
) -> dict[str, Any]:
    """Register ``run``'s model as a new version of ``ktrec-<model>`` with alias ``challenger``."""
    import mlflow
    from mlflow.exceptions import MlflowException

    mlflow_client = client(settings)
    name = registered_name(run["model"])
    try:
        mlflow_client.get_registered_model(name)
    except MlflowException:
        mlflow_client.create_registered_model(
            name, description=f"ktrec {run['model']} recommender (top-k pyfunc); aliases champion/challenger"
        )
    same = mlflow_client.search_model_versions(f"name = '{name}' and run_id = '{run['run_id']}'")
    if same:
        version = same[0]
    else:
        version = mlflow.register_model(run["model_uri"], name, tags={"ktrec.variant": run["variant"] or ""})
        mlflow_client.set_model_version_tag(name, version.version, "ktrec.run_id", run["run_id"])
        if baseline_run_id:
            mlflow_client.set_model_version_tag(
                name, version.version, "ktrec.baseline_run_id", baseline_run_id
            )
        mlflow_client.set_registered_model_alias(name, CHALLENGER, version.version)
    log.info("%s version %s (run %s) is the challenger", name, version.version, run["run_id"])
    return {
        "name": name,
        "version": str(version.version),
        "run_id": run["run_id"],
        "model_uri": f"models:/{name}/{version.version}",
        "created": not same,
    }


def register_run_dir(
    settings: Settings, *, run_dir: Path, baseline_dir: Path | None = None
) -> dict[str, Any]:
    """CLI path: log the run in ``run_dir`` (and its baseline) and register it as the challenger."""
    run = log_training_run(settings, summary=run_folder.summary(run_dir))
    baseline = log_training_run(settings, summary=run_folder.summary(baseline_dir)) if baseline_dir else None
    return register_version(settings, run=run, baseline_run_id=baseline and baseline["run_id"])


TUNE_EXPERIMENT = "ktrec-tune"


def log_study(settings: Settings, *, summary: dict[str, Any]) -> str:
    """One MLflow run per hyper-parameter study (jobs.train.tune): best values as params, the best valid
    NDCG@10 and every trial's value as metrics, trials table / best scenario / study summary as artifacts."""
    import mlflow

    mlflow_client = client(settings)
    tags = {"ktrec.model": summary["model"], "ktrec.variant": summary["variant"], "ktrec.split": summary["split"],
            "ktrec.kind": "tune"}
    with mlflow.start_run(experiment_id=experiment_id(settings, mlflow_client, TUNE_EXPERIMENT),
                          run_name=f"tune-{summary['model']}-{summary['variant']}", tags=tags) as run:
        mlflow.log_params({"trials": summary["trials"], "epochs": summary["epochs"], "seed": summary["seed"],
                           **{f"best_{k}": str(v) for k, v in summary["best_params"].items()}})
        mlflow.log_metric(summary["objective"], summary["best_value"])
        for step, value in enumerate(summary["values"]):
            if value is not None:
                mlflow.log_metric(f"trial_{summary['objective']}", float(value), step=step)
        for path in summary["paths"].values():
            mlflow.log_artifact(path, artifact_path="study")
        return run.info.run_id
