"""The profile job on small lake tables: contract columns, point-in-time inputs, incremental refresh,
validation of bad generations, hostile catalogue text, PCA sidecar and the CLI."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import profile_lake
import pyarrow.parquet as pq
import pytest
from profile_lake import AS_OF, utc

from jobs.core import lake
from jobs.profiles import generate as job
from jobs.profiles import table as profile_table
from models.llm.base import Generation, failed
from models.llm.template_backend import TemplateBackend


class CountingTemplate(TemplateBackend):
    """The real template backend, counting the prompts it is asked for (blanking chosen entities, or failing
    them as a server would)."""

    def __init__(self, blank: set[str] = frozenset(), http_error: set[str] = frozenset()) -> None:
        self.calls: Counter[str] = Counter()
        self.blank, self.http_error = set(blank), set(http_error)

    def generate(self, prompts):
        self.calls.update(p.entity_id for p in prompts)
        return [
            Generation(text="   ", finish_reason="stop") if p.entity_id in self.blank
            else failed("http 503: busy") if p.entity_id in self.http_error else g
            for p, g in zip(prompts, super().generate(prompts), strict=False)
        ]


@pytest.fixture
def lake_settings(settings):
    profile_lake.build(settings)
    return settings


def test_user_profiles_follow_the_contract_and_as_of(lake_settings):
    summary = job.run(lake_settings, entity="user", backend="template", as_of=AS_OF)
    assert summary | {"seconds": 0} == summary | {
        "entities": 3,
        "regenerated": 3,
        "unchanged": 0,
        "failed": 0,
        "generator": "template:none:p2",
        "seconds": 0,
    }
    files = list(lake.table_path(lake_settings, lake.USER_PROFILES).glob("*.parquet"))
    schema = pq.read_schema(files[0])
    assert schema.names == lake.PROFILE_COLUMNS
    assert str(schema.field("event_timestamp").type) == "timestamp[us, tz=UTC]"
    rows = profile_table.latest(lake_settings, "user").set_index("entity_id")
    assert sorted(rows.index) == ["u1", "u2", "u3"]  # u4 only rates after as_of
    assert (rows["event_timestamp"] == AS_OF).all()
    assert all(len(v) == 384 and abs(np.linalg.norm(v) - 1) < 1e-4 for v in rows["embedding"])
    u1 = rows.loc["u1", "profile_text"]
    assert "female" in u1 and "18-24" in u1 and "student" in u1 and "1990s (67%), 1940s (33%)" in u1
    assert "GoldenEye" not in u1 and "Toy Story" in u1  # GoldenEye was rated after as_of
    hacked = rows.loc["u2", "profile_text"]
    assert "<|im_start|>" not in hacked and "\x00" not in hacked and len(hacked) < 1500


def test_unchanged_users_are_not_regenerated(lake_settings):
    counting = CountingTemplate()
    job.run(lake_settings, entity="user", as_of=AS_OF, generator=counting)
    version = lake.current_version(lake_settings, lake.USER_PROFILES)
    counting.calls.clear()
    again = job.run(lake_settings, entity="user", as_of=AS_OF, generator=counting)
    assert (again["regenerated"], again["unchanged"], sum(counting.calls.values())) == (0, 3, 0)
    assert lake.current_version(lake_settings, lake.USER_PROFILES) == version  # nothing republished

    later = utc(2024, 4, 1)  # u1 gained an event, u4 appeared
    summary = job.run(lake_settings, entity="user", as_of=later, generator=counting)
    assert dict(counting.calls) == {"u1": 1, "u4": 1}
    assert (summary["regenerated"], summary["unchanged"]) == (2, 2)
    history = profile_table.read_rows(lake_settings, "user")
    assert sorted(history.groupby("entity_id").size().items()) == [("u1", 2), ("u2", 1), ("u3", 1), ("u4", 1)]
    assert (
        "GoldenEye"
        in profile_table.latest(lake_settings, "user").set_index("entity_id").loc["u1", "profile_text"]
    )
    # Point-in-time: as of the first date, u1's latest profile is still the old one.
    assert (
        "GoldenEye"
        not in profile_table.latest(lake_settings, "user", as_of=AS_OF)
        .set_index("entity_id")
        .loc["u1", "profile_text"]
    )

    counting.calls.clear()
    forced = job.run(lake_settings, entity="user", as_of=later, generator=counting, full=True)
    assert forced["regenerated"] == 4 and sum(counting.calls.values()) == 4


def test_changed_generator_changes_the_hash(lake_settings):
    job.run(lake_settings, entity="item", backend="template", as_of=AS_OF)
    lake_settings.llm.max_new_tokens += 1
    assert job.run(lake_settings, entity="item", backend="template", as_of=AS_OF)["regenerated"] == 6


def test_empty_generations_are_retried_once_then_kept_out(lake_settings):
    flaky = CountingTemplate(blank={"u2"})
    summary = job.run(lake_settings, entity="user", as_of=AS_OF, generator=flaky)
    assert flaky.calls["u2"] == 2 and flaky.calls["u1"] == 1
    assert (summary["failed"], summary["regenerated"], summary["failure_reasons"]) == (1, 2, {"empty": 1})
    assert "u2" not in set(profile_table.read_rows(lake_settings, "user")["entity_id"])
    assert [r["entity_id"] for r in profile_table.failed_rows(lake_settings, "user")] == ["u2"]
    # Next run, same inputs: greedy decoding would write the same blank text, so u2 is not asked for again
    # and stays on the failure list (an incremental refresh costs only what changed).
    again = CountingTemplate()
    quiet = job.run(lake_settings, entity="user", as_of=AS_OF, generator=again)
    assert (quiet["regenerated"], quiet["unchanged"], quiet["rejected_before"]) == (0, 2, 1)
    assert sum(again.calls.values()) == 0
    assert [r["entity_id"] for r in profile_table.failed_rows(lake_settings, "user")] == ["u2"]
    # Asked to, it retries exactly the rejected row.
    retry = job.run(lake_settings, entity="user", as_of=AS_OF, generator=again, retry_rejected=True)
    assert (retry["regenerated"], retry["unchanged"], retry["failed"], dict(again.calls)) == (1, 2, 0, {"u2": 1})
    assert profile_table.failed_rows(lake_settings, "user") == []


def test_rejected_rows_come_back_when_their_inputs_change_and_server_errors_every_run(lake_settings):
    first = job.run(lake_settings, entity="user", as_of=AS_OF,
                    generator=CountingTemplate(blank={"u1"}, http_error={"u3"}))
    assert (first["failed"], first["failure_reasons"]) == (2, {"empty": 1, "http 503": 1})
    # Same inputs: the server error is retried, the rejected text is not.
    second = CountingTemplate(blank={"u1"}, http_error={"u3"})
    job.run(lake_settings, entity="user", as_of=AS_OF, generator=second)
    assert dict(second.calls) == {"u3": 2}  # one attempt plus the in-run retry
    assert sorted(r["entity_id"] for r in profile_table.failed_rows(lake_settings, "user")) == ["u1", "u3"]
    # u1 rates GoldenEye after AS_OF: as of a later time its inputs changed, so it is tried again.
    third = CountingTemplate()
    later = job.run(lake_settings, entity="user", as_of=utc(2024, 4, 1), generator=third)
    assert dict(third.calls) == {"u1": 1, "u3": 1, "u4": 1} and later["failed"] == 0


def test_item_profiles_with_hostile_titles_and_pca(lake_settings):
    lake_settings.embed.pca_dim = 3
    summary = job.run(lake_settings, entity="item", backend="template", as_of=AS_OF)
    assert (summary["entities"], summary["regenerated"], summary["failed"]) == (6, 6, 0)
    rows = profile_table.latest(lake_settings, "item").set_index("entity_id")
    assert "Animation, Children's, Comedy" in rows.loc["1", "profile_text"]
    assert "Acme" in rows.loc["6", "profile_text"] and "\n" not in rows.loc["6", "profile_text"]
    evil = rows.loc["5", "profile_text"]
    assert "<|im_" not in evil and "\x00" not in evil and len(evil) < 400
    from models.embed import load_pca

    pca = load_pca(lake.table_path(lake_settings, lake.ITEM_PROFILES) / profile_table.PCA_FILE)
    assert pca["components"].shape == (3, 384) and pca["mean"].shape == (384,)


def test_cli_profiles_json(lake_settings):
    from typer.testing import CliRunner

    from jobs.cli import app

    result = CliRunner().invoke(
        app,
        ["profiles", "--entity", "user", "--backend", "template", "--as-of", "2024-02-01T00:00:00", "--json"],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["regenerated"] == 3 and summary["table"].endswith("profiles_user")
    bad = CliRunner().invoke(app, ["profiles", "--entity", "group", "--backend", "template"])
    assert bad.exit_code == 2


def test_missing_lake_is_a_clear_error(settings):
    with pytest.raises(FileNotFoundError, match="ktrec ingest"):
        job.run(settings, entity="user", backend="template", as_of=AS_OF)


def test_transformers_profiles_with_real_smollm2(lake_settings, smollm2_dir):
    lake_settings.llm.model = str(smollm2_dir)
    lake_settings.llm.max_new_tokens = 48
    lake_settings.llm.batch_size = 4
    summary = job.run(lake_settings, entity="user", backend="transformers", as_of=AS_OF)
    assert summary["generator"] == "transformers:smollm2:p2"
    assert summary["regenerated"] + summary["failed"] == 3 and summary["regenerated"] >= 1
    assert summary["generated_tokens"] > 0 and summary["tokens_per_s"] > 0
    rows = profile_table.latest(lake_settings, "user")
    assert all(len(t.split()) >= 5 for t in rows["profile_text"])
