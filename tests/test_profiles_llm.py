"""LLM-written profiles beside template ones: base-model completion prompts, the generator recorded per
row (and each generator refreshed on its own), LLM + template rows, the profile cache, and the benchmark's
incremental refresh regenerating exactly the entities whose interactions changed."""

from __future__ import annotations

from collections import Counter

import profile_lake
import pytest
from profile_lake import AS_OF, utc

from jobs.profiles import cache as profile_cache
from jobs.profiles import combine
from jobs.profiles import generate as job
from jobs.profiles import table as profile_table
from models.llm.base import Generation
from models.llm.prompts import item_prompt
from models.llm.template_backend import TemplateBackend
from models.llm.validate import generate_checked


class Counting(TemplateBackend):
    """The real template backend, counting the entities it is asked to write."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def generate(self, prompts):
        self.calls.update(p.entity_id for p in prompts)
        return super().generate(prompts)


@pytest.fixture
def lake_settings(settings):
    profile_lake.build(settings)
    return settings


def test_base_model_completion_prompts_read_like_the_start_of_an_entry():
    film = item_prompt(item_id="1", row={"title": "Toy Story (1995)", "year": 1995, "genres": "Animation"})
    assert film.completion == "From an encyclopedia of films:\nToy Story (1995) is a"
    assert film.lead == "Toy Story (1995) is a"
    untitled_year = item_prompt(item_id="2", row={"title": "Heat", "year": 1995, "genres": "Crime"})
    assert untitled_year.completion.endswith("\nHeat (1995) is a")
    glue = item_prompt(item_id="3", row={
        "title": "Gorilla Glue, 8 ounce", "categories": "Adhesives", "brand": "Gorilla",
        # UniSRec's text repeats the title: shown once.
        "description": "Gorilla Glue, 8 ounce. Adhesives. Gorilla."})
    assert glue.completion == ("From a product catalogue:\nTitle: Gorilla Glue, 8 ounce\nCategories: Adhesives\n"
                               "Brand: Gorilla\nIn short: Gorilla Glue, 8 ounce is a")
    stirrer = item_prompt(item_id="4", row={"title": "Stirrer", "description": "Mixes\nliquids."})
    assert stirrer.completion == ("From a product catalogue:\nTitle: Stirrer\nDescription: Mixes liquids.\n"
                                  "In short: Stirrer is a")


class CutAtLength(TemplateBackend):
    """Returns a fixed text stopped at the token allowance."""

    def __init__(self, text: str) -> None:
        self.text, self.calls = text, 0

    def generate(self, prompts):
        self.calls += len(prompts)
        return [Generation(text=self.text, finish_reason="length") for _ in prompts]


def test_length_stop_after_a_full_sentence_is_cut_back_not_retried():
    backend = CutAtLength("Heat (1995) is a crime film by Michael Mann. It stars Al")
    gens, retried = generate_checked(backend, [item_prompt(item_id="1", row={"title": "Heat"})], max_new_tokens=8)
    assert (retried, backend.calls, gens[0].text) == (0, 1, "Heat (1995) is a crime film by Michael Mann.")


def test_each_row_records_its_generator_and_each_generator_refreshes_alone(lake_settings, smollm2_dir):
    from models.llm.hf_backend import HFBackend

    job.run(lake_settings, entity="item", backend="template", as_of=AS_OF)
    llm = HFBackend(model_path=smollm2_dir, max_new_tokens=24, batch_size=8, max_model_len=512, device="cpu")
    lm = job.run(lake_settings, entity="item", as_of=AS_OF, generator=llm)
    assert lm["generator"] == "transformers:smollm2:p2" and lm["regenerated"] + lm["failed"] == 6
    assert lm["regenerated"] >= 3  # a real instruct model writes most of six item profiles
    rows = profile_table.read_rows(lake_settings, "item")
    assert Counter(rows["generator"]) == Counter({"template:none:p2": 6, "transformers:smollm2:p2": lm["regenerated"]})
    # The template's rows are still current for the template, though the LLM wrote after them.
    again = job.run(lake_settings, entity="item", backend="template", as_of=AS_OF)
    assert (again["regenerated"], again["unchanged"]) == (0, 6)
    template = profile_table.latest(lake_settings, "item", generator="template:").set_index("entity_id")
    assert template.loc["1", "profile_text"].startswith("Toy Story (1995) is a movie from the 1990s.")
    written = profile_table.latest(lake_settings, "item", generator="transformers:,vllm:")
    assert set(written["generator"]) == {"transformers:smollm2:p2"} and len(written) == lm["regenerated"]
    # The rejected rows wait for new inputs: nothing is generated again.
    again = job.run(lake_settings, entity="item", as_of=AS_OF, generator=llm)
    assert (again["generated"], again["rejected_before"]) == (0, lm["failed"])


def test_llm_plus_template_rows_join_both_texts(lake_settings):
    class Other(TemplateBackend):
        """A second generator: the template's text under another name and model, in upper case."""

        name, model = "other", "/models/upper"

        def generate(self, prompts):
            return [Generation(text=g.text.upper(), finish_reason="stop") for g in super().generate(prompts)]

    job.run(lake_settings, entity="user", backend="template", as_of=AS_OF)
    job.run(lake_settings, entity="user", as_of=AS_OF, generator=Other())
    summary = combine.run(lake_settings, entity="user", as_of=AS_OF, llm="other:")
    assert (summary["generator"], summary["regenerated"]) == ("template+other:upper:p2", 3)
    rows = profile_table.latest(lake_settings, "user", generator="template+").set_index("entity_id")
    plain = profile_table.latest(lake_settings, "user", generator="template:").set_index("entity_id")
    u1 = plain.loc["u1", "profile_text"]
    assert rows.loc["u1", "profile_text"] == f"{u1.upper()} {u1}"
    assert combine.run(lake_settings, entity="user", as_of=AS_OF, llm="other:")["regenerated"] == 0
    # Nothing to combine with: a clear error, nothing written.
    with pytest.raises(LookupError, match="0 rows from generator 'vllm:'"):
        combine.run(lake_settings, entity="user", as_of=AS_OF, llm="vllm:")


def test_cli_combine_writes_llm_plus_template_rows(lake_settings):
    import json

    from typer.testing import CliRunner

    from jobs.cli import app

    job.run(lake_settings, entity="item", backend="template", as_of=AS_OF)
    result = CliRunner().invoke(app, ["profiles", "--entity", "item", "--as-of", "2024-02-01T00:00:00",
                                      "--combine", "template:", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["generator"], summary["regenerated"]) == ("template+template:none:p2", 6)


def test_cache_serves_a_second_lake_without_generating(settings, tmp_path, monkeypatch):
    settings.llm.profile_cache = str(tmp_path / "cache")
    profile_lake.build(settings)
    first = Counting()
    one = job.run(settings, entity="user", as_of=AS_OF, generator=first)
    assert (one["generated"], one["from_cache"], sum(first.calls.values())) == (3, 0, 3)
    file = profile_cache.path(settings, entity="user", generator="template:none:p2")
    assert file == tmp_path / "cache" / "ml-100k" / "template_none_p2" / "user.parquet"
    cached_bytes = file.read_bytes()
    before = profile_table.latest(settings, "user")

    monkeypatch.setenv("KTREC_HOME", str(tmp_path / "second-home"))
    from jobs.core.settings import get_settings

    get_settings.cache_clear()
    other = get_settings()
    other.llm.profile_cache = settings.llm.profile_cache
    profile_lake.build(other)
    second = Counting()
    two = job.run(other, entity="user", as_of=AS_OF, generator=second)
    assert (two["generated"], two["from_cache"], two["regenerated"], sum(second.calls.values())) == (0, 3, 3, 0)
    assert file.read_bytes() == cached_bytes
    after = profile_table.latest(other, "user")
    columns = ["entity_id", "profile_text", "source_hash", "generator", "event_timestamp"]
    assert after[columns].equals(before[columns])
    assert [list(v) for v in after["embedding"]] == [list(v) for v in before["embedding"]]


def test_incremental_refresh_regenerates_exactly_the_touched_users(lake_settings):
    from benchmarks.profiles import add_interactions

    counting = Counting()
    job.run(lake_settings, entity="user", as_of=AS_OF, generator=counting)
    later = utc(2024, 1, 20)  # still before AS_OF: u2's and u3's new ratings count, nobody else's prompt changes
    add_interactions(lake_settings, [("u2", "4", 2.0, later), ("u3", "6", 4.0, later)])
    counting.calls.clear()
    summary = job.run(lake_settings, entity="user", as_of=AS_OF, generator=counting)
    assert dict(counting.calls) == {"u2": 1, "u3": 1}
    assert (summary["regenerated"], summary["unchanged"]) == (2, 1)
    text = profile_table.latest(lake_settings, "user").set_index("entity_id").loc["u3", "profile_text"]
    assert "rated 2 items" in text


def test_a_deadline_keeps_what_was_generated_and_the_rest_follows_later(settings, tmp_path):
    import time

    settings.llm.profile_cache = str(tmp_path / "cache")
    settings.llm.batch_size = 2
    profile_lake.build(settings)

    first = Counting()  # the deadline has passed: the first batch of two runs, no other starts
    cut = job.run(settings, entity="user", as_of=AS_OF, generator=first, deadline=time.time())
    assert (cut["generated"], cut["regenerated"], cut["missing"], sum(first.calls.values())) == (2, 2, 1, 2)
    again = Counting()
    rest = job.run(settings, entity="user", as_of=AS_OF, generator=again)
    assert (rest["generated"], rest["regenerated"], rest["unchanged"]) == (1, 1, 2)
    assert set(again.calls) == {"u1", "u2", "u3"} - set(first.calls)
    nothing = job.run(settings, entity="user", as_of=AS_OF, generator=Counting(), cache_only=True, full=True)
    assert (nothing["generated"], nothing["regenerated"]) == (0, 0)
