"""
### ktrec promote

Manually promote a registered model version to `champion`, or roll the champion back.

- **Promote** (leave *Roll back to* empty): the version (default: the current `challenger`) must pass
  the same gate as the nightly run: on the same test split its NDCG@10 beats the current champion's by
  the configured margin and beats the no-KT baseline trained with it. A refusal fails this run and the
  reason is written on the version (`ktrec.gate_reason`).
- **Roll back** (set *Roll back to*): `champion` moves to that version, which must exist; no gate.

Same as `ktrec promote --model bpr [--version V | --rollback-to V]`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag, task

from jobs.core.names import MODELS, PROMOTE_DAG_ID

PARAMS = {
    "model": Param(
        "bpr",
        type="string",
        enum=list(MODELS),
        title="Model",
        description="CF model whose registered model (ktrec-<model>) to change.",
        section="Target",
    ),
    "version": Param(
        None,
        type=["null", "string"],
        pattern="^[0-9]+$",
        title="Version to promote",
        description="Registered version to gate and promote; empty means the current challenger.",
        section="Promote",
    ),
    "rollback_to": Param(
        None,
        type=["null", "string"],
        pattern="^[0-9]+$",
        title="Roll back to",
        description="Move champion back to this version instead (skips the gate).",
        section="Roll back",
    ),
}


@dag(
    dag_id=PROMOTE_DAG_ID,
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "ktrec", "retries": 0, "execution_timeout": timedelta(minutes=20)},
    params=PARAMS,
    tags=["ktrec", "registry"],
    doc_md=__doc__,
)
def ktrec_promote():
    @task
    def change_champion(params: dict | None = None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from jobs.core.settings import get_settings
        from jobs.registry import gate as promotion

        if params["version"] and params["rollback_to"]:
            raise AirflowFailException("give a version to promote or a version to roll back to, not both")
        if params["rollback_to"]:
            return promotion.rollback(get_settings(), model=params["model"], to_version=params["rollback_to"])
        result = promotion.promote(get_settings(), model=params["model"], version=params["version"])
        if not result["promoted"]:
            raise AirflowFailException(f"not promoted: {result['reason']}")
        return result

    change_champion()


ktrec_promote()
