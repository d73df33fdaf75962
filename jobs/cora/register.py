"""CoRA adapters in the MLflow registry, gated on test AUC.

``register_cora`` logs one ``ktrec cora train`` run (params, AUC/UAUC per system and slice, the adapter
folder, its metrics.json), registers the adapter as a new version of ``ktrec-cora`` with the alias
``challenger`` and gates it: it becomes ``champion`` only if its test AUC beats every baseline of the same
run (zero-shot LLM, plain LoRA, CF score) AND the current champion's test AUC by the promotion margin.
The decision is written on the version as tags, as for the CF models (:mod:`jobs.registry.gate`).
Idempotent by run key; the logging and aliases are the LLM methods' shared path (jobs/registry/adapters.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jobs.core.settings import Settings
from jobs.registry import gate
from jobs.registry.adapters import register_adapter

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
    metrics = flat_metrics(summary["metrics"])
    params = {"llm": Path(summary["llm"]).name, "n_train": summary["n_train"], "n_test": summary["n_test"],
              "cf_source": summary.get("cf_source", ""), **{f"cora.{k}": v for k, v in summary["cora_config"].items()}}
    result = register_adapter(
        settings, registered=REGISTERED, description="CoRA adapters for a frozen LLM", run_key=run_key, model="cora",
        params=params, metrics=metrics, artifacts={"adapter": Path(summary["adapter_path"])}, summary=summary,
        gate_metric=GATE_METRIC, promote=promote,
        decide=lambda values, champion: decide(values, champion_auc=champion, margin=settings.mlflow.promotion_margin))
    return result | {"auc": metrics.get(GATE_METRIC)}
