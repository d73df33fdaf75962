"""The promotion gate, promotion and rollback, on MLflow registered-model aliases (never stages).

A challenger version becomes ``champion`` only if, on the same test split, its NDCG@10
  1. beats the no-KT baseline trained in the same pipeline run (run id in the version tag
     ``ktrec.baseline_run_id``), and
  2. beats the current champion's by more than ``settings.mlflow.promotion_margin``.
When the champion was evaluated on another split (an older night), it is re-scored on the challenger's
test split through its pyfunc (:func:`jobs.registry.offline_eval.ndcg_on_split`), so both numbers are comparable.
Every decision is written on the version as tags (``ktrec.gate``, ``ktrec.gate_reason``) and returned.
Rollback moves ``champion`` back to a named version, an operator's decision, so it skips the gate.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from jobs.core.settings import Settings
from jobs.registry.tracking import CHALLENGER, CHAMPION, GATE_METRIC, client, registered_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GateDecision:
    model: str
    version: str | None
    passed: bool
    reason: str
    challenger_ndcg: float | None = None
    baseline_ndcg: float | None = None
    champion_version: str | None = None
    champion_ndcg: float | None = None
    margin: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(
    label: str, value: float | None, *, baselines: dict[str, float | None], champion: float | None,
    margin: float, champion_version: str | None = None,
) -> tuple[bool, str]:
    """The one promotion rule, for every registered model (CF models and the LLM methods alike): ``value``
    of metric ``label`` must beat every baseline of its own run, then the champion by more than ``margin``.
    A baseline or champion without a value (``None``) does not count."""
    if value is None:
        return False, f"no {label} for the challenger"
    for name, other in baselines.items():
        if other is not None and not value > other:
            return False, f"{label} {value:.4f} does not beat the {name} ({other:.4f})"
    names = ", ".join(f"{name} ({other:.4f})" for name, other in baselines.items() if other is not None)
    if champion is None:
        return True, f"{label} {value:.4f} beats {names or 'no baseline'}; no champion yet"
    who = f"champion v{champion_version}" if champion_version else "the champion"
    if not value > champion + margin:
        return False, f"{label} {value:.4f} does not beat {who} ({champion:.4f}) by the margin {margin}"
    return True, f"{label} {value:.4f} beats {who} ({champion:.4f}) + {margin} and {names}"


def alias_version(mlflow_client, name: str, alias: str):
    """The version behind ``alias`` of registered model ``name``; None when the model or alias is absent."""
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def tag_decision(mlflow_client, name: str, version: str, passed: bool, reason: str) -> None:
    """Write the decision on the version, so the registry UI shows why it was or was not promoted."""
    mlflow_client.set_model_version_tag(name, version, "ktrec.gate", "passed" if passed else "refused")
    mlflow_client.set_model_version_tag(name, version, "ktrec.gate_reason", reason)


def _version(mlflow_client, name: str, version: str | None):
    mv = (
        mlflow_client.get_model_version(name, version)
        if version
        else alias_version(mlflow_client, name, CHALLENGER)
    )
    if mv is None:
        raise LookupError(f"{name} has no version {version or 'with alias ' + CHALLENGER}")
    return mv


def gate(settings: Settings, *, model: str, version: str | None = None) -> GateDecision:
    """Decide whether ``version`` (default: the challenger) may become champion; changes nothing."""
    mv = _version(client(settings), registered_name(model), version)
    return gate_run(
        settings,
        model=model,
        run_id=mv.run_id,
        baseline_run_id=mv.tags.get("ktrec.baseline_run_id"),
        version=str(mv.version),
    )


def gate_run(
    settings: Settings, *, model: str, run_id: str, baseline_run_id: str | None, version: str | None = None
) -> GateDecision:
    """The gate on a logged run, before (``version=None``) or after it is registered."""
    mlflow_client = client(settings)
    name = registered_name(model)
    margin = settings.mlflow.promotion_margin
    decision = dict(model=name, version=version, margin=margin)
    run = mlflow_client.get_run(run_id)
    ndcg = run.data.metrics.get(GATE_METRIC)
    if ndcg is None:
        return GateDecision(**decision, passed=False, reason=f"run {run_id} logged no {GATE_METRIC}")
    decision["challenger_ndcg"] = ndcg
    baseline_id = baseline_run_id
    if not baseline_id:
        return GateDecision(
            **decision, passed=False, reason="no no-KT baseline run recorded for this version"
        )
    baseline = mlflow_client.get_run(baseline_id)
    if baseline.data.tags.get("ktrec.split_digest") != run.data.tags.get("ktrec.split_digest"):
        return GateDecision(**decision, passed=False, reason="baseline was evaluated on another test split")
    decision["baseline_ndcg"] = baseline_ndcg = baseline.data.metrics.get(GATE_METRIC, float("nan"))
    champion = alias_version(mlflow_client, name, CHAMPION)
    champion_ndcg = None
    if champion is not None:
        decision["champion_version"] = str(champion.version)
        if champion.run_id == run_id:
            return GateDecision(**decision, passed=True, reason="already the champion")
        decision["champion_ndcg"] = champion_ndcg = _champion_ndcg(settings, name, champion, run)
    passed, reason = decide(
        "NDCG@10", ndcg, baselines={"no-KT baseline": baseline_ndcg}, champion=champion_ndcg, margin=margin,
        champion_version=decision.get("champion_version"),
    )
    return GateDecision(**decision, passed=passed, reason=reason)


def _champion_ndcg(settings: Settings, name: str, champion, challenger_run) -> float:
    """The champion's NDCG@10 on the challenger's test split (re-scored when the splits differ)."""
    from jobs.registry.offline_eval import ndcg_on_split

    champion_run = client(settings).get_run(champion.run_id)
    digest = challenger_run.data.tags.get("ktrec.split_digest")
    if (
        champion_run.data.tags.get("ktrec.split_digest") == digest
        and GATE_METRIC in champion_run.data.metrics
    ):
        return champion_run.data.metrics[GATE_METRIC]
    log.info("re-scoring %s v%s on split %s", name, champion.version, challenger_run.data.tags["ktrec.split"])
    return ndcg_on_split(
        settings,
        model_uri=f"models:/{name}/{champion.version}",
        split=challenger_run.data.tags["ktrec.split"],
    )


def record(settings: Settings, decision: GateDecision) -> None:
    """Write the decision on the version, so the registry UI shows why it was or was not promoted."""
    if decision.version is None:
        raise ValueError("record() needs a registered version; the decision was taken on a bare run")
    tag_decision(client(settings), decision.model, decision.version, decision.passed, decision.reason)


def promote(
    settings: Settings, *, model: str, version: str | None = None, apply: bool = True
) -> dict[str, Any]:
    """Gate ``version`` (default: the challenger) and, if it passes and ``apply``, make it champion."""
    decision = gate(settings, model=model, version=version)
    record(settings, decision)
    promoted = decision.passed and apply
    if promoted:
        client(settings).set_registered_model_alias(decision.model, CHAMPION, decision.version)
        log.info("%s v%s is champion: %s", decision.model, decision.version, decision.reason)
    else:
        log.warning("%s v%s not promoted: %s", decision.model, decision.version, decision.reason)
    return decision.as_dict() | {"promoted": promoted}


def rollback(settings: Settings, *, model: str, to_version: str) -> dict[str, Any]:
    """Move ``champion`` back to ``to_version`` (which must exist and have a logged model)."""
    mlflow_client = client(settings)
    name = registered_name(model)
    target = mlflow_client.get_model_version(name, str(to_version))  # raises when absent
    previous = alias_version(mlflow_client, name, CHAMPION)
    mlflow_client.set_registered_model_alias(name, CHAMPION, str(target.version))
    mlflow_client.set_model_version_tag(
        name, str(target.version), "ktrec.rollback_from", str(previous.version) if previous else "none"
    )
    log.warning(
        "%s champion rolled back from v%s to v%s", name, previous and previous.version, target.version
    )
    return {
        "model": name,
        "champion": str(target.version),
        "previous_champion": str(previous.version) if previous else None,
    }


def champion(settings: Settings, *, model: str) -> str | None:
    """The current champion version of ``model``, or None."""
    mv = alias_version(client(settings), registered_name(model), CHAMPION)
    return str(mv.version) if mv else None
