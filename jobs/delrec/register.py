"""DELRec models in the MLflow registry as ``ktrec-delrec``, gated on test HR@1.

``register_delrec`` logs one ``ktrec delrec train`` run (params, HR@1 / HR@5 / NDCG@5 per system and slice,
the ``model/`` folder with the soft prompt and LoRA weights, metrics.json) through the LLM methods' shared
path (jobs/registry/adapters.py): a new version with the alias ``challenger``, which becomes ``champion`` only
if its test HR@1 beats the teacher's and the no-soft-prompt ablation's on the same candidates, then the
current champion's by the promotion margin (:func:`jobs.registry.gate.decide`, the one rule).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jobs.core.settings import Settings
from jobs.registry import gate
from jobs.registry.adapters import register_adapter

REGISTERED = "ktrec-delrec"
GATE_METRIC = "delrec_all_hr_at_1"
METRIC_NAMES = ("hr_at_1", "hr_at_5", "ndcg_at_5")


def flat_metrics(metrics: dict[str, dict[str, dict]]) -> dict[str, float]:
    """``{"delrec": {"all": {"hr_at_1": .3, "n": 50}}}`` -> ``{"delrec_all_hr_at_1": .3}``; empty slices drop out."""
    return {f"{system}_{slice_}_{name}": float(values[name])
            for system, slices in metrics.items() for slice_, values in slices.items() if values.get("n")
            for name in METRIC_NAMES}


def decide(metrics: dict[str, float], *, champion_hr: float | None, margin: float,
           teacher: str = "SASRec") -> tuple[bool, str]:
    """Beat the teacher and the ablation of the same run on test HR@1, then the champion by ``margin``."""
    baselines = {f"{teacher} teacher": metrics.get("teacher_all_hr_at_1"),
                 "no-soft-prompt ablation": metrics.get("lora_all_hr_at_1")}
    return gate.decide("DELRec HR@1", metrics.get(GATE_METRIC), baselines=baselines, champion=champion_hr,
                       margin=margin)


def register_delrec(settings: Settings, *, summary: dict[str, Any], run_key: str, promote: bool = True) -> dict:
    """Log, register as challenger, gate and (when ``promote``) make champion; returns the decision."""
    metrics = flat_metrics(summary["metrics"])
    config = summary["config"]
    params = {"llm": Path(summary["llm"]).name, "teacher": summary["teacher"], "data": summary["data"],
              "n_soft": config["n_soft"], "rank": config["rank"], "alpha": config["alpha"],
              "targets": ",".join(config["targets"]), "max_length": summary["max_length"],
              **{f"n_{k}": v["rows"] - v["prompt_too_long"] for k, v in summary["counts"].items()},
              **{f"stage{k}.{name}": value for k in (1, 2) for name, value in config[f"stage{k}"].items()}}
    return register_adapter(
        settings, registered=REGISTERED, description="DELRec: a distilled soft prompt and LoRA for a causal LLM",
        run_key=run_key, model="delrec", params=params, metrics=metrics,
        artifacts={"model": Path(summary["model_dir"])}, summary=summary, gate_metric=GATE_METRIC, promote=promote,
        decide=lambda values, champion: decide(values, champion_hr=champion, margin=settings.mlflow.promotion_margin,
                                               teacher=summary["teacher"]))
