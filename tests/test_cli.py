"""The ``ktrec`` command line as a whole: commands listed in pipeline order, CoRA grouped as a sub-app with
its old names kept hidden, one error path (a known error is one red line and exit 2, an unknown one
propagates) and one date/time parser. Expectations are written out by hand."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from jobs.cli import app
from jobs.cli.common import parse_time

PIPELINE = ["settings", "ingest", "datasets", "validate", "split", "profiles", "models", "stats", "materialize",
            "train", "tune", "register", "promote", "cora", "delrec", "align", "demo"]


def listed_commands(output: str) -> list[str]:
    """Command names in the help's Commands panel, top to bottom (wrapped descriptions are skipped)."""
    panel = output.split("Commands", 1)[1]
    return re.findall(r"^\W ([a-z][a-z-]*) ", panel, flags=re.MULTILINE)


def test_help_lists_the_commands_in_pipeline_order():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    assert listed_commands(result.output) == PIPELINE
    assert "cora-data" not in result.output and "train-cora" not in result.output  # hidden aliases


def test_cora_is_a_sub_app_and_the_old_names_still_work():
    result = CliRunner().invoke(app, ["cora", "--help"])
    assert result.exit_code == 0, result.output
    assert listed_commands(result.output) == ["data", "train", "score"]
    for old, new in (("cora-data", "data"), ("train-cora", "train"), ("score-cora", "score")):
        alias = CliRunner().invoke(app, [old, "--help"])
        assert alias.exit_code == 0 and f"ktrec cora {new}" in alias.output, alias.output
    # Same command behind both names: the same usage error from either.
    for args in (["cora", "score", "--adapter", "x"], ["score-cora", "--adapter", "x"]):
        bad = CliRunner().invoke(app, args)
        assert bad.exit_code == 2 and bad.stderr.strip() == "give either --pairs FILE or both --user and --item"


def test_a_known_error_is_one_red_line_and_exit_2(spark, settings):
    result = CliRunner().invoke(app, ["ingest", "--source", "/nonexistent"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == ["ingest source /nonexistent does not exist"]
    assert "Traceback" not in result.output


def test_a_known_error_with_json_ends_with_a_json_line(settings):
    result = CliRunner().invoke(app, ["ingest", "--source", "/nonexistent", "--map", "user_id", "--json"])
    assert result.exit_code == 2
    message = "--map expects FIELD=COLUMN pairs separated by commas, got 'user_id'"
    assert json.loads(result.stdout.splitlines()[-1]) == {"success": False, "error": message, "failures": []}
    assert result.stderr.strip() == message


def test_an_unknown_error_propagates(settings, monkeypatch):
    import jobs.publish.stats

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(jobs.publish.stats, "run", broken)
    result = CliRunner().invoke(app, ["stats", "--as-of", "1998-04-23"])
    assert isinstance(result.exception, RuntimeError) and str(result.exception) == "a bug"


def test_one_time_parser_accepts_dates_and_aware_times_in_utc():
    assert parse_time("1998-04-23", "--as-of") == datetime(1998, 4, 23, 0, 0, tzinfo=UTC)
    assert parse_time("1998-04-23T10:00:00+02:00", "--as-of") == datetime(1998, 4, 23, 8, 0, tzinfo=UTC)
    assert parse_time("1998-04-23T10:00:00", "--as-of") == datetime(1998, 4, 23, 10, 0, tzinfo=UTC)
    assert parse_time("1998-04-23", "--batch-date", day=True).date().isoformat() == "1998-04-23"


def test_commands_get_the_parsed_time(settings, monkeypatch):
    import jobs.publish.stats

    seen = []
    monkeypatch.setattr(jobs.publish.stats, "run", lambda settings, as_of: seen.append(as_of) or {"ok": 1})
    for value in ("1998-04-23", "1998-04-23T10:00:00+02:00"):
        result = CliRunner().invoke(app, ["stats", "--as-of", value, "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout.splitlines()[-1]) == {"ok": 1}
    assert seen == [datetime(1998, 4, 23, 0, 0, tzinfo=UTC), datetime(1998, 4, 23, 8, 0, tzinfo=UTC)]


@pytest.mark.parametrize(
    "args",
    [
        ["stats", "--as-of", "yesterday"],
        ["materialize", "--end", "yesterday"],
        ["profiles", "--entity", "user", "--as-of", "yesterday"],
        ["ingest", "--source", "/nonexistent", "--batch-date", "yesterday"],
        ["ingest", "--source", "/nonexistent", "--batch-date", "1998-04-23T10:00:00"],  # a day, not a time
        ["validate", "--batch-date", "yesterday"],
        ["demo", "--date", "yesterday"],
    ],
)
def test_a_malformed_time_exits_2(settings, args):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "is not" in result.output and "Traceback" not in result.output
