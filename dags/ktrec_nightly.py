"""
### ktrec nightly

Every night at 02:00 UTC (or on **Trigger**): ingest the interaction log into the lake, validate it,
cut a train/valid/test split, refresh the LLM user and item profiles, validate them, compute interaction
statistics, publish everything to the Feast feature store, train each selected CF model twice (the
no-LLM baseline and the LLM-KT variant), evaluate and log both runs to MLflow, gate the KT model against
the current champion and the baseline, register it as `challenger` and promote it to `champion` when it
passed. On request it also trains CoRA, DELRec and the alignment model (`ktrec-cora`, `ktrec-delrec`,
`ktrec-align`) after the CF models.

Each task calls one function in `jobs/` and passes paths and small summaries on. Every output is keyed
on the run's logical date, so clearing and rerunning a date replaces its outputs instead of adding more.
A batch that fails validation stops the run before the split, the features or any model is touched.
Profile generation and training run in the `gpu` pool (1 slot on a GPU node) and, with the
CeleryExecutor, on the `gpu` queue that only GPU workers serve.

Settings come from the worker's `KTREC_*` environment (`jobs.core.settings`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from airflow.sdk import Param, dag, task

from jobs.core.names import BACKENDS, MODELS, NIGHTLY_DAG_ID, VARIANTS

DEFAULT_ARGS = {
    "owner": "ktrec",
    "retries": 2,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
    "execution_timeout": timedelta(hours=1),
}

PARAMS = {
    "dataset": Param(
        None,
        type=["null", "string"],
        title="Dataset path",
        description="Folder or file to ingest; empty uses the configured default (MovieLens 100K).",
        section="Data",
    ),
    "full_refresh": Param(False, type="boolean", title="Full refresh", section="Data",
                          description="Regenerate every profile instead of only those whose inputs changed."),
    "split_strategy": Param(
        "random",
        type="string",
        enum=["random", "temporal", "loo"],
        title="Split strategy",
        description="How interactions are cut into train/valid/test.",
        section="Data",
    ),
    "profile_backend": Param(
        None,
        type=["null", "string"],
        enum=[None, *BACKENDS],
        title="Profile backend",
        description="LLM backend for profiles; empty uses the configured one.",
        section="Profiles",
    ),
    "models": Param(
        ["bpr"],
        type="array",
        items={"type": "string", "enum": list(MODELS)},
        examples=list(MODELS),
        minItems=1,
        uniqueItems=True,
        title="Models",
        description="CF models to retrain; each trains as baseline and with LLM-KT.",
        section="Training",
    ),
    "epochs": Param(
        None,
        type=["null", "integer"],
        minimum=1,
        maximum=500,
        title="Epochs",
        description="Override the epochs of every training stage; empty keeps the scenario's.",
        section="Training",
    ),
    "num_processes": Param(
        1,
        type="integer",
        minimum=1,
        maximum=64,
        title="Training processes",
        description="Data-parallel ranks per training run (PyTorch DDP started by Spark's TorchDistributor, "
        "gloo); 1 trains in the task's own process. Where the ranks run follows the train settings "
        "(train.local_mode: beside the task, or on the Spark cluster's executors).",
        section="Training",
    ),
    "cora": Param(False, type="boolean", title="Train CoRA", section="Training", description=(
        "Also train a CoRA adapter for the frozen LLM (SmolLM2 by default) on the KT model's embeddings, and "
        "register it as ktrec-cora. Slow without a GPU.")),
    "delrec": Param(False, type="boolean", title="Train DELRec", section="Training", description=(
        "Also distil a SASRec teacher (trained on leave-one-out training prefixes) into a soft prompt for the LLM "
        "(SmolLM2 by default), tune it with LoRA on 20-candidate next-item prompts and register it as "
        "ktrec-delrec, gated on test HR@1 against SASRec and the no-soft-prompt ablation. Slow without a GPU.")),
    "align": Param(False, type="boolean", title="Train alignment", section="Training", description=(
        "Also tune the LLM (SmolLM2 by default) with LoRA on recommendation tasks plus auxiliary language tasks "
        "(masked item modelling, masked item text, BPR in words), retrieve over the whole catalogue and register "
        "it as ktrec-align, gated on retrieval NDCG@10 against the rec-only twin. Slow without a GPU.")),
    "promote": Param(True, type="boolean", title="Promote", section="Registry",
                     description="Make a challenger that passes the gate the champion; off only registers it."),
}


def _run_date(context) -> date:
    """The date this run is keyed on: the logical date, or the run's run_after for a date-less trigger."""
    moment = context.get("logical_date") or context["dag_run"].run_after
    return moment.astimezone(UTC).date()


def _fail_on_invalid(call):
    """A validation failure is final: fail the task without retries, so nothing downstream runs."""
    from airflow.sdk.exceptions import AirflowFailException

    from jobs.validate import ValidationFailed

    try:
        return call()
    except ValidationFailed as exc:
        raise AirflowFailException(str(exc)) from exc


def _optional(params: dict, name: str, method: str) -> None:
    """Skip the task unless the run's boolean param ``name`` asks for ``method``."""
    from airflow.sdk.exceptions import AirflowSkipException
    if not params[name]:
        raise AirflowSkipException(f"{method} is off for this run (param `{name}`)")


def _settings():
    from jobs.core.settings import get_settings

    return get_settings()


def _night_end(run_date: date) -> datetime:
    """The exclusive end of the logical date: what a night may read and publish (UTC midnight after it)."""
    return datetime.combine(run_date + timedelta(days=1), datetime.min.time(), UTC)


def _cut_time(cut: dict) -> datetime:
    """The split's training cut-off: profiles and stats are taken as of it."""
    return datetime.fromisoformat(str(cut["train_end"]).replace("Z", "+00:00"))


@task(execution_timeout=timedelta(minutes=30))
def ingest(params: dict | None = None, **context) -> dict:
    from pathlib import Path

    from jobs.ingest import run

    settings = _settings()
    summary = run(settings, source=Path(params["dataset"] or settings.dataset), batch_date=_run_date(context))
    return {k: summary[k] for k in ("batch_date", "rows_valid", "rows_quarantined")}


@task(execution_timeout=timedelta(minutes=20))
def validate(ingested: dict) -> dict:
    from jobs.validate import run

    summary = _fail_on_invalid(lambda: run(_settings(), batch_date=date.fromisoformat(str(ingested["batch_date"]))))
    return {"batch_date": str(ingested["batch_date"]), "success": bool(summary.get("success", True))}


@task(execution_timeout=timedelta(minutes=30))
def split(validated: dict, params: dict | None = None, **context) -> dict:
    from jobs.split import run

    # Keyed on the logical date: only events before the night's end, in a table of its own.
    run_date = _run_date(context)
    name = f"nightly-{run_date.isoformat()}"
    summary = run(_settings(), strategy=params["split_strategy"], name=name, as_of=_night_end(run_date))
    return {"name": name, "train_end": summary["meta"]["train_end"]}


@task(pool="gpu", queue="gpu", execution_timeout=timedelta(hours=3))
def profiles(entity: str, cut: dict, params: dict | None = None) -> dict:
    from jobs.profiles import run

    summary = run(_settings(), entity=entity, backend=params["profile_backend"], as_of=_cut_time(cut),
                  full=params["full_refresh"])
    return {"entity": entity, "regenerated": summary.get("regenerated"), "table": summary.get("table")}


@task(execution_timeout=timedelta(minutes=20))
def validate_profiles(profiled: dict) -> dict:
    from jobs.validate import validate_profiles as check

    summary = _fail_on_invalid(lambda: check(_settings(), entity=profiled["entity"]))
    return {"entity": profiled["entity"], "success": bool(summary.get("success", True))}


@task(execution_timeout=timedelta(minutes=30))
def stats(cut: dict, checked: list) -> dict:
    from jobs.publish.stats import run

    as_of = _cut_time(cut)
    return {"as_of": as_of.isoformat(), "tables": run(_settings(), as_of=as_of).get("tables")}


@task(execution_timeout=timedelta(minutes=30))
def materialize(computed: dict, **context) -> dict:
    from jobs.publish.materialize import run

    end = _night_end(_run_date(context))
    return {"end": end.isoformat(), "views": sorted(run(_settings(), end=end).get("views", {}))}


@task
def selected_models(params: dict | None = None) -> list[str]:
    return list(params["models"])


@task(pool="gpu", queue="gpu", execution_timeout=timedelta(hours=4))
def train(model: str, variant: str, cut: dict, features: dict, params: dict | None = None, **context) -> dict:
    from jobs.nightly.tasks import train_one

    return train_one(_settings(), model=model, variant=variant, split=cut["name"], run_date=_run_date(context),
                     epochs=params["epochs"], num_processes=params["num_processes"])


@task(execution_timeout=timedelta(minutes=30))
def evaluate(results: list, **context) -> list[dict]:
    from jobs.nightly.tasks import evaluate as check_and_log

    return check_and_log(_settings(), results=list(results), run_date=_run_date(context))


@task(execution_timeout=timedelta(minutes=30))
def gate(evaluated: dict) -> dict:
    from jobs.nightly.tasks import gate as decide

    return decide(_settings(), evaluated=evaluated)


@task(execution_timeout=timedelta(minutes=10))
def register(gated: dict) -> dict:
    from jobs.nightly.tasks import register as add_version

    return add_version(_settings(), gated=gated)


@task(execution_timeout=timedelta(minutes=10))
def promote(registered: dict, params: dict | None = None) -> dict:
    from jobs.nightly.tasks import promote as move_alias

    return move_alias(_settings(), registered=registered, enabled=params["promote"])


@task(pool="gpu", queue="gpu", execution_timeout=timedelta(hours=4))
def train_cora(results: list, cut: dict, params: dict | None = None, **context) -> dict:
    _optional(params, "cora", "CoRA")
    from jobs.nightly.tasks import train_cora as run_cora

    return run_cora(_settings(), results=list(results), split=cut["name"], run_date=_run_date(context),
                    promote=params["promote"])


@task(pool="gpu", queue="gpu", execution_timeout=timedelta(hours=4))
def train_delrec(results: list, cut: dict, params: dict | None = None, **context) -> dict:
    _optional(params, "delrec", "DELRec")
    from jobs.nightly.tasks import train_delrec as run_delrec

    return run_delrec(_settings(), results=list(results), split=cut["name"],
                      run_date=_run_date(context), promote=params["promote"])


@task(pool="gpu", queue="gpu", execution_timeout=timedelta(hours=4))
def train_align(results: list, cut: dict, params: dict | None = None, **context) -> dict:
    _optional(params, "align", "Alignment")
    from jobs.nightly.tasks import train_align as run_align

    return run_align(_settings(), split=cut["name"], run_date=_run_date(context), promote=params["promote"])


@dag(dag_id=NIGHTLY_DAG_ID, schedule="0 2 * * *", start_date=datetime(2026, 1, 1, tzinfo=UTC), catchup=False,
     max_active_runs=1, default_args=DEFAULT_ARGS, params=PARAMS, tags=["ktrec", "nightly"], doc_md=__doc__)
def ktrec_nightly():
    cut = split(validate(ingest()))
    checked = validate_profiles.expand(profiled=profiles.partial(cut=cut).expand(entity=["user", "item"]))
    features = materialize(stats(cut, checked))
    results = train.partial(cut=cut, features=features).expand(model=selected_models(), variant=list(VARIANTS))
    promote.expand(registered=register.expand(gated=gate.expand(evaluated=evaluate(results))))
    train_cora(results, cut)
    train_delrec(results, cut)
    train_align(results, cut)


ktrec_nightly()
