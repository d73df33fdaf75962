"""The GE gate on real Spark + real Great Expectations: a good batch passes, each kind of bad batch fails
with a message naming the failed expectation, and Data Docs are written."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from jobs.core import lake
from jobs.validate.gate import ValidationFailed, run
from tests.lakefixtures import BATCH_DATE, build_lake, synthetic_events, write_manifest, write_table


def test_good_batch_passes_and_builds_data_docs(spark, settings):
    events = synthetic_events()
    build_lake(spark, settings, events=events, rows_quarantined=1)
    summary = run(settings, batch_date=BATCH_DATE)
    assert summary["success"] is True
    tables = {"interactions", "items", "users"}
    assert set(summary["suites"]) == tables | {f"{t}_schema" for t in tables} | {"batch"}
    assert all(s["success"] and s["evaluated"] > 0 for s in summary["suites"].values())
    assert summary["facts"] == {"orphan_item_rows": 0, "orphan_user_rows": 0,
                                "quarantine_ratio": pytest.approx(1 / (len(events) + 1))}
    index = settings.data_docs / "index.html"
    assert summary["data_docs"] == str(index) and index.is_file()
    assert "interactions" in index.read_text()
    # Without a batch date the latest manifest's batch is validated.
    assert run(settings)["batch_date"] == BATCH_DATE.isoformat()
    # Data Docs keep the history: both runs are indexed, each with its 7 suite pages.
    runs = set(re.findall(rf"lake-{BATCH_DATE}@\w+", index.read_text()))
    assert len(runs) == 2
    assert len(list((settings.data_docs / "validations").rglob("*.html"))) == 2 * len(summary["suites"])


def _late(days: float) -> datetime:
    return datetime.combine(BATCH_DATE, datetime.min.time(), tzinfo=UTC) + timedelta(days=days)


# kind -> (how the batch is broken, expectation named in the message, column or fact named)
BAD_BATCHES = {
    "rating_out_of_range": ("rating", "expect_column_values_to_be_between", "rating"),
    "null_id": ("null_user", "expect_column_values_to_not_be_null", "user_id"),
    "duplicate_event_key": (
        "duplicate", "expect_compound_columns_to_be_unique", "user_id, item_id, event_ts"
    ),
    "orphan_item": ("orphan", "expect_column_max_to_be_between", "orphan_item_rows"),
    "too_few_rows": ("few", "expect_table_row_count_to_be_between", "(table)"),
    "quarantine_ratio": ("quarantine", "expect_column_max_to_be_between", "quarantine_ratio"),
    "future_event": ("future", "expect_column_values_to_be_between", "event_ts"),
}


def _break(kind: str, events: list, settings) -> dict:
    """Mutate a good batch into a bad one; returns extra build_lake arguments."""
    if kind == "rating":
        events[3] = (*events[3][:2], 9.0, events[3][3])
    elif kind == "null_user":
        events[2] = (None, *events[2][1:])
    elif kind == "duplicate":
        events.append(events[5])
    elif kind == "orphan":
        return {"items": sorted({e[1] for e in events})[1:]}
    elif kind == "few":
        settings.validation.min_interactions = len(events) + 1
    elif kind == "quarantine":
        return {"rows_quarantined": len(events)}
    elif kind == "future":
        events[0] = (*events[0][:3], _late(settings.ingest.max_future_days + 1.5))
    return {}


@pytest.mark.parametrize("kind", list(BAD_BATCHES))
def test_bad_batch_fails_naming_the_expectation(spark, settings, kind):
    breakage, expectation, column = BAD_BATCHES[kind]
    events = synthetic_events()
    extra = _break(breakage, events, settings)
    build_lake(spark, settings, events=events, users=sorted({e[0] for e in events if e[0]}), **extra)
    with pytest.raises(ValidationFailed) as failed:
        run(settings, batch_date=BATCH_DATE)
    message = str(failed.value)
    assert f"{expectation} on {column}" in message, message
    assert [f.expectation for f in failed.value.failures] == [expectation], message
    assert (settings.data_docs / "index.html").is_file()  # docs are built for failed runs too


def test_event_on_the_last_allowed_day_passes(spark, settings):
    events = synthetic_events()
    events[0] = (*events[0][:3], _late(settings.ingest.max_future_days + 0.99))
    build_lake(spark, settings, events=events)
    assert run(settings, batch_date=BATCH_DATE)["success"]


def test_wrong_column_type_fails(spark, settings):
    build_lake(spark, settings, events=synthetic_events())
    write_table(spark, settings, name=lake.USERS, ddl="user_id STRING, age STRING, gender STRING, "
                "occupation STRING, zip STRING", rows=[(f"u{u}", "30", "F", "x", "0") for u in range(8)])
    expected = r"expect_column_values_to_be_of_type on age: observed StringType"
    with pytest.raises(ValidationFailed, match=expected):
        run(settings, batch_date=BATCH_DATE)


def test_missing_manifest_or_table_is_a_clear_failure(spark, settings):
    with pytest.raises(ValidationFailed, match="no ingest manifest"):
        run(settings)
    write_manifest(settings, batch_date=BATCH_DATE, rows_read=1)
    with pytest.raises(ValidationFailed, match="lake table 'interactions' does not exist"):
        run(settings, batch_date=BATCH_DATE)


def test_cli_exits_non_zero_on_a_bad_batch(spark, settings):
    from jobs.cli import app

    events = synthetic_events()
    build_lake(spark, settings, events=events, rows_quarantined=len(events))
    result = CliRunner().invoke(app, ["validate", "--batch-date", BATCH_DATE.isoformat(), "--json"])
    assert result.exit_code == 1, result.output
    assert "quarantine_ratio" in result.output
    write_manifest(settings, batch_date=BATCH_DATE, rows_read=len(events))
    result = CliRunner().invoke(app, ["validate", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["success"] is True


def _profiles(n: int = 4, dim: int = 3) -> list[tuple]:
    v1, v2 = _late(-10), _late(-1)
    return [
        (f"u{e}", f"User {e} likes dramas.", [0.1 * e] * dim, f"h{e}{k}", "template:none:v1", ts, ts)
        for e in range(n) for k, ts in enumerate((v1, v2))
    ]


BAD_PROFILES = {
    "blank_text": (lambda rows: rows[:1] + [(rows[1][0], "  ", *rows[1][2:])] + rows[2:],
                   "expect_column_values_to_match_regex on profile_text"),
    "ragged_embedding": (lambda rows: rows[:-1] + [(*rows[-1][:2], [0.5] * 5, *rows[-1][3:])],
                         "expect_column_unique_value_count_to_be_between on embedding_dim"),
    "duplicate_version": (lambda rows: rows + rows[:1],
                          "expect_compound_columns_to_be_unique on entity_id, event_timestamp"),
    "null_generator": (lambda rows: [(*rows[0][:4], None, *rows[0][5:])] + rows[1:],
                       "expect_column_values_to_not_be_null on generator"),
}


def test_profiles_pass_and_cli_reports(spark, settings):
    from jobs.cli import app
    from jobs.validate.gate import validate_profiles

    write_table(spark, settings, name=lake.USER_PROFILES, ddl=lake.PROFILES_SCHEMA, rows=_profiles())
    summary = validate_profiles(settings, entity="user")
    assert summary["success"] and set(summary["suites"]) == {"profiles_user", "profiles_user_schema"}
    with pytest.raises(ValueError, match="entity"):
        validate_profiles(settings, entity="movie")
    result = CliRunner().invoke(app, ["validate", "--profiles", "item", "--json"])
    assert result.exit_code == 1 and "profiles_item" in result.output  # never written


@pytest.mark.parametrize("kind", list(BAD_PROFILES))
def test_bad_profiles_fail_naming_the_expectation(spark, settings, kind):
    from jobs.validate.gate import validate_profiles

    breakage, expected = BAD_PROFILES[kind]
    write_table(spark, settings, name=lake.ITEM_PROFILES, ddl=lake.PROFILES_SCHEMA,
                rows=breakage(_profiles()))
    with pytest.raises(ValidationFailed) as failed:
        validate_profiles(settings, entity="item")
    assert expected in str(failed.value) and len(failed.value.failures) == 1, str(failed.value)
