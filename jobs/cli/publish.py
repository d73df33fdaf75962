"""The publish stage on the command line: ``ktrec stats`` computes per-user and per-item interaction
stats as of a time into the lake, and ``ktrec materialize`` registers the feature definitions in Feast and
loads the online store up to the run's logical date. Both take their time through ``parse_time``.
"""

from __future__ import annotations

import typer

from jobs.cli.common import JsonOpt, emit, known_errors, parse_time


@known_errors()
def stats(
    as_of: str = typer.Option(..., "--as-of", help="As-of time (ISO-8601, UTC if naive): count events up to it."),
    as_json: bool = JsonOpt,
) -> None:
    """Compute per-user and per-item interaction stats as of a time into the lake (user_stats, item_stats)."""
    from jobs.core.settings import get_settings
    from jobs.publish.stats import run

    moment = parse_time(as_of, "--as-of")
    emit(run(get_settings(), as_of=moment), as_json)


@known_errors()
def materialize(
    end: str = typer.Option(..., "--end", help="Materialize features up to this time (the run's logical date)."),
    as_json: bool = JsonOpt,
) -> None:
    """Register the features/ definitions in Feast and load the online store up to --end."""
    from jobs.core.settings import get_settings
    from jobs.publish.materialize import run

    emit(run(get_settings(), end=parse_time(end, "--end")), as_json)
