"""Idempotent to the row: a rerun of a batch, or a copy of its input under another name, changes no table.

Every table is compared row for row (all columns, sorted), the manifest field by field but for its timing
field ``seconds``.
"""

from __future__ import annotations

import hashlib
import shutil
from datetime import date

from ingest_helpers import DAY, TIMING, lake_state, rows, run, write

from jobs.core import lake

T0 = 1709028000  # 2024-02-27T10:00:00Z
RATINGS = "".join([
    f"1::10::5::{T0}\n", f"1::20::3::{T0 + 60}\n", f"2::10::4::{T0 + 86400}\n",
    f"2::10::2::{T0 + 86400}\n",  # the same event again: the later line wins, inside the batch
    "2::30::4\n", f"3::40::9::{T0}\n", "\n",  # three bad lines
])


def _ml1m(folder):
    write(folder, "ratings.dat", RATINGS)
    write(folder, "movies.dat", "10::Heat (1995)::Action\n20::Alien (1979)::Horror\n10::Heat (1995)::Crime\n")
    write(folder, "users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n")
    return folder


def _summary(out: dict) -> dict:
    return {k: v for k, v in out.items() if k not in TIMING}


def test_rerun_leaves_every_table_row_for_row(spark, settings, tmp_path):
    folder = _ml1m(tmp_path / "ml-1m")
    first = run(spark, settings, folder)
    assert (first["rows_valid"], first["rows_quarantined"], first["interactions"]) == (4, 3, 3)
    before = lake_state(spark, settings)
    assert set(before) == {"manifests", lake.INTERACTIONS, lake.ITEMS, lake.USERS, lake.QUARANTINE}
    assert len(before[lake.QUARANTINE]) == 3 and len(before[lake.ITEMS]) == 2  # item 10 listed twice: one row
    second = run(spark, settings, folder)
    assert lake_state(spark, settings) == before
    assert _summary(second) == _summary(first)
    # A third run, with nothing new and nothing else in between, still changes nothing.
    run(spark, settings, folder)
    assert lake_state(spark, settings) == before


def test_a_copy_under_another_name_keeps_the_first_source(spark, settings, tmp_path):
    header = "user_id,item_id,rating,timestamp\n"
    body = f"u1,i1,4,{T0}\nu2,i2,3,{T0 + 86400}\n\"12,17,4,874965758\nu3,i3,x,{T0}\n"
    original = write(tmp_path, "b1/log.csv", header + body)
    run(spark, settings, original)
    before = lake_state(spark, settings)
    assert {r[0] for r in rows(spark, settings, columns=["source"])} == {"log.csv"}
    copy = tmp_path / "b2" / "copy of log.csv"  # another name (and a space: Spark's URIs encode it)
    copy.parent.mkdir()
    shutil.copy(original, copy)
    out = run(spark, settings, copy)
    assert out["rows_quarantined"] == 2 and out["source"] == str(copy)
    after = lake_state(spark, settings)
    tables = [lake.INTERACTIONS, lake.ITEMS, lake.USERS, lake.QUARANTINE]
    assert {t: after[t] for t in tables} == {t: before[t] for t in tables}
    assert {r[0] for r in rows(spark, settings, columns=["source"])} == {"log.csv"}
    quarantined = rows(spark, settings, lake.QUARANTINE, ["source_file", "line_number", "reason"])
    assert quarantined == [(str(original), 4, "unbalanced_quote"), (str(original), 5, "non_numeric_rating")]
    # The copy under the other name, on its own, names itself.
    assert lake_state(spark, settings)["manifests"]["2024-03-01.json"]["source"] == str(copy)
    # A rerun of the copy, then of the original: still the same rows.
    run(spark, settings, copy)
    run(spark, settings, original, batch_date=DAY)
    again = lake_state(spark, settings)
    assert {t: again[t] for t in tables} == {t: before[t] for t in tables}


def test_quarantine_key_is_digest_and_line(spark, settings, tmp_path):
    src = write(tmp_path, "log.csv", f"user_id,item_id,rating,timestamp\nu1,i1,4,{T0}\nu2,,3,{T0}\n")
    run(spark, settings, src)
    digest = lake_state(spark, settings)["manifests"]["2024-03-01.json"]["source_digests"][str(src)]
    assert digest == hashlib.sha256(src.read_bytes()).hexdigest()
    got = rows(spark, settings, lake.QUARANTINE, ["source_digest", "line_number", "reason", "source_file"])
    assert got == [(digest, 3, "missing_item_id", str(src))]
    # The same content for another batch date is not quarantined twice (the first delivery wins).
    run(spark, settings, src, batch_date=date(2024, 3, 2))
    assert rows(spark, settings, lake.QUARANTINE, ["source_digest", "line_number", "batch_date"]) == [
        (digest, 3, DAY)]
