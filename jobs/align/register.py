"""Alignment models in the MLflow registry as ``ktrec-align``, gated on test retrieval NDCG@10.

``register_align`` logs one ``ktrec align train`` run (params, every system's metrics, the ``model/`` folder
with the LoRA adapters, metrics.json) through the LLM methods' shared path (jobs/registry/adapters.py): a new
version with the alias ``challenger``, which becomes ``champion`` only if the aligned model's (recommendation
+ auxiliary tasks) retrieval NDCG@10 beats the recommendation-only twin's and the frozen LLM's of the same
run, then the current champion's by the promotion margin (:func:`jobs.registry.gate.decide`, the one rule).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jobs.core.settings import Settings
from jobs.registry import gate
from jobs.registry.adapters import register_adapter

REGISTERED = "ktrec-align"
GATE_METRIC = "rec_aux_retrieval_ndcg_at_10"


def flat_metrics(metrics: dict[str, dict[str, float]]) -> dict[str, float]:
    """``{"rec_aux": {"retrieval_ndcg_at_10": .1}}`` -> ``{"rec_aux_retrieval_ndcg_at_10": .1}``."""
    return {f"{system}_{name}": float(value) for system, values in metrics.items() for name, value in values.items()
            if value is not None}


def decide(metrics: dict[str, float], *, champion: float | None, margin: float) -> tuple[bool, str]:
    """Beat the rec-only twin and the frozen LLM of the same run, then the champion by ``margin``."""
    baselines = {"rec-only twin": metrics.get("rec_only_retrieval_ndcg_at_10"),
                 "frozen LLM": metrics.get("zero_shot_retrieval_ndcg_at_10")}
    return gate.decide("alignment retrieval NDCG@10", metrics.get(GATE_METRIC), baselines=baselines,
                       champion=champion, margin=margin)


def register_align(settings: Settings, *, summary: dict[str, Any], run_key: str, promote: bool = True) -> dict:
    """Log, register as challenger, gate and (when ``promote``) make champion; returns the decision."""
    config = summary["config"]
    params = {"llm": Path(summary["llm"]).name, "data": summary["data"], "budget": summary["budget"],
              "rank": config["rank"], "alpha": config["alpha"], "targets": ",".join(config["targets"]),
              "retrieval": config["retrieval"], "beams": config["beams"], "max_length": summary["max_length"],
              "test_users": summary["test_users"], **{f"fit.{k}": v for k, v in config["fit"].items()},
              **{f"mixture.{name}": ",".join(f"{t}:{w}" for t, w in mix.items())
                 for name, mix in summary["mixtures"].items()}}
    return register_adapter(
        settings, registered=REGISTERED, run_key=run_key, model="align", params=params,
        description="Recommendation-knowledge alignment: LoRA adapters for a causal LLM (rec + auxiliary tasks)",
        metrics=flat_metrics(summary["metrics"]), artifacts={"model": Path(summary["model_dir"])}, summary=summary,
        gate_metric=GATE_METRIC, promote=promote,
        decide=lambda values, champion: decide(values, champion=champion, margin=settings.mlflow.promotion_margin))
