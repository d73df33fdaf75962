"""``ktrec validate``: the Great Expectations gate on the lake (interactions, items, users and the batch's
facts) or, with ``--profiles``, on a profile table. It builds Data Docs under KTREC_HOME/gx/data_docs and,
when the gate fails, exits 1 (the code the tests and the DAG's operators know) listing every failed
expectation; with ``--json`` the failures are also the last JSON line.
"""

from __future__ import annotations

import typer

from jobs.cli.common import JsonOpt, emit, known_errors, parse_time, spinner


@known_errors(code=1)  # a failed gate exits 1: tests/test_validate.py pins it
def validate(
    batch_date: str | None = typer.Option(
        None, "--batch-date", help="Batch to validate, YYYY-MM-DD (default: the latest ingested)."),
    profiles: str | None = typer.Option(None, "--profiles", help="Validate a profile table instead: user or item."),
    as_json: bool = JsonOpt,
) -> None:
    """Great Expectations gate on the lake (interactions, items, users, batch facts) or a profile table.

    Builds Data Docs under KTREC_HOME/gx/data_docs; exits 1 listing every failed expectation.
    """
    from jobs.core.settings import get_settings
    from jobs.validate import gate as job

    day = parse_time(batch_date, "--batch-date", day=True).date() if batch_date else None
    with spinner("validating with Great Expectations"):
        if profiles:
            summary = job.validate_profiles(get_settings(), entity=profiles)
        else:
            summary = job.run(get_settings(), batch_date=day)
    emit(summary, as_json)
