"""``ktrec settings``: the first thing to run on a new machine. It prints the resolved settings (profile,
KTREC_HOME and every location derived from it) exactly as every other command and Airflow task sees them.
"""

from __future__ import annotations

from jobs.cli.common import JsonOpt, emit, known_errors


@known_errors()
def settings(as_json: bool = JsonOpt) -> None:
    """Show the resolved settings (profile, KTREC_HOME and every derived location)."""
    from jobs.core.settings import get_settings

    s = get_settings()
    summary = s.model_dump(mode="json") | {
        "root": str(s.root), "lake": str(s.lake), "mlflow_uri": s.mlflow_uri, "data_docs": str(s.data_docs),
    }
    emit(summary, as_json)
