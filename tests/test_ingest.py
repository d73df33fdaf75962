"""Ingest end to end on real local Spark: shared datasets, idempotent reruns, incremental partitions,
quarantine of every bad-row kind, missing columns, empty batches."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from conftest import AMAZON, ML100K
from ingest_helpers import DAY, partition_inodes, rows, run, table, write

from jobs.core import lake
from jobs.ingest.text import MissingColumnsError
from jobs.ingest.write import manifest_path

T0 = 1709028000  # 2024-02-27T10:00:00Z
DAY_S = 86400
HEADER = "user_id,item_id,rating,timestamp\n"


def utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


def test_ml100k_full(spark, settings):
    out = run(spark, settings, ML100K)
    assert (out["rows_read"], out["rows_quarantined"], out["interactions"]) == (100_000, 0, 100_000)
    assert (out["users"], out["items"]) == (943, 1682)
    # The first line of u.data, read back typed.
    first = (ML100K / "u.data").read_text().splitlines()[0].split("\t")
    hit = table(spark, settings, lake.INTERACTIONS).where(f"user_id = '{first[0]}' AND item_id = '{first[1]}'")
    row = hit.first()
    assert row.rating == float(first[2]) and row.event_ts == utc(int(first[3]))
    assert str(row.event_date) == utc(int(first[3])).date().isoformat() and row.ts_synthetic is False
    item = table(spark, settings, lake.ITEMS).where("item_id = '1'").first()
    assert (item.title, item.year, item.genres) == ("Toy Story (1995)", 1995, "Animation|Children's|Comedy")
    user = table(spark, settings, lake.USERS).where("user_id = '1'").first()
    assert (user.age, user.gender, user.occupation, user.zip) == (24, "M", "technician", "85711")
    manifest = json.loads(manifest_path(settings, DAY).read_text())
    assert manifest["rows_valid"] == 100_000 and manifest["format"] == "ml100k"
    assert len(manifest["partitions_written"]) == table(spark, settings, lake.INTERACTIONS) \
        .select("event_date").distinct().count()


def test_amazon_sequences_full(spark, settings):
    out = run(spark, settings, AMAZON)
    assert (out["interactions"], out["users"], out["items"]) == (59_384, 8_442, 4_385)
    inter = table(spark, settings, lake.INTERACTIONS)
    assert inter.where("NOT ts_synthetic OR rating IS NOT NULL").count() == 0
    # User index 0's full sequence (test history + target), mapped back to ASINs, in synthetic order.
    user0 = (AMAZON / "Scientific.user2index").read_text().splitlines()[0].split("\t")[0]
    asin = {ln.split("\t")[1]: ln.split("\t")[0] for ln in (AMAZON / "Scientific.item2index").read_text().splitlines()}
    hist, target = (AMAZON / "Scientific.test.inter").read_text().splitlines()[1].split("\t")[1:]
    expected = [asin[i] for i in hist.split() + [target]]
    got = [r.item_id for r in inter.where(f"user_id = '{user0}'").orderBy("event_ts").collect()]
    assert got == expected
    item = table(spark, settings, lake.ITEMS).where("item_id = 'B0000223SI'").first()
    assert item.title.endswith("Adhesive-Backed Sanding Roll") and item.brand == "PORTER-CABLE"
    assert item.categories.startswith("Industrial & Scientific") and item.description.startswith(item.title)


def _csv(tmp_path, name, lines):
    return write(tmp_path, name, HEADER + "".join(f"{line}\n" for line in lines))


def test_reingest_is_idempotent(spark, settings, tmp_path):
    src = _csv(tmp_path, "b1/log.csv", [f"u1,i1,4,{T0}", f"u1,i2,3,{T0 + DAY_S}", f"u2,i1,5,{T0}",
                                        f"u2,i1,5,{T0}", "u3,,1,1"])
    first = run(spark, settings, src)
    before = rows(spark, settings)
    q_before = rows(spark, settings, lake.QUARANTINE, ["reason", "line_number", "raw"])
    second = run(spark, settings, src)
    assert rows(spark, settings) == before and len(before) == 3  # the exact duplicate collapsed
    assert rows(spark, settings, lake.QUARANTINE, ["reason", "line_number", "raw"]) == q_before
    assert rows(spark, settings, lake.ITEMS, ["item_id"]) == [("i1",), ("i2",)]
    assert second["rows_quarantined"] == first["rows_quarantined"] == 1
    assert json.loads(manifest_path(settings, DAY).read_text())["seconds"] == second["seconds"]


def test_incremental_day_touches_only_its_partitions(spark, settings, tmp_path):
    run(spark, settings, _csv(tmp_path, "d1/log.csv", [f"u1,i1,4,{T0}", f"u2,i2,2,{T0 + DAY_S}"]))
    d1, d2 = utc(T0).date().isoformat(), utc(T0 + DAY_S).date().isoformat()
    inodes1, inodes2 = partition_inodes(settings, d1), partition_inodes(settings, d2)
    # A new day: only its partition is written, the others are the same files (hard links).
    out = run(spark, settings, _csv(tmp_path, "d2/log.csv", [f"u3,i3,5,{T0 + 2 * DAY_S}"]))
    assert out["partitions_written"] == [utc(T0 + 2 * DAY_S).date().isoformat()]
    assert partition_inodes(settings, d1) == inodes1 and partition_inodes(settings, d2) == inodes2
    # A late batch for d1: d1 merged (the new rating wins, the old row of another user stays), d2 untouched.
    out = run(spark, settings, _csv(tmp_path, "d3/log.csv", [f"u1,i1,1,{T0}", f"u4,i1,3,{T0 + 60}"]))
    assert out["partitions_written"] == [d1] and partition_inodes(settings, d2) == inodes2
    got = rows(spark, settings, columns=["user_id", "item_id", "rating"])
    assert got == [("u1", "i1", 1.0), ("u2", "i2", 2.0), ("u3", "i3", 5.0), ("u4", "i1", 3.0)]


BAD_CASES = [  # (line, reason)
    ("u1,i1,4", "bad_column_count"),
    ("u1,i1,4,5,6", "bad_column_count"),
    (f",i1,4,{T0}", "missing_user_id"),
    (f"u1,,4,{T0}", "missing_item_id"),
    (f"u1,i1,four,{T0}", "non_numeric_rating"),
    (f"u1,i1,9,{T0}", "rating_out_of_range"),
    (f"u1,i1,-1,{T0}", "rating_out_of_range"),
    ("u1,i1,4,", "missing_timestamp"),
    ("u1,i1,4,yesterday", "bad_timestamp"),
    ("u1,i1,4,2030-01-01T00:00:00Z", "future_timestamp"),
    ("u1,i1,4,1970-01-02", "too_old_timestamp"),
    (f"u1,i\x001,4,{T0}", "nul_byte"),
]


def test_every_bad_row_kind_is_quarantined(spark, settings, tmp_path):
    good = [f"g{i},i{i},{i % 5 + 1},{T0 + i * 3600}" for i in range(6)] + ['"g,q",i9,,2024-02-27T12:00:00+02:00']
    lines, expected = [], []
    for n, (bad, reason) in enumerate(BAD_CASES):
        lines += [good[n % len(good)] if n < len(good) else f"x{n},i1,3,{T0}", bad]
        expected.append((reason, len(lines) + 1))  # +1: the header is line 1
    body = (HEADER + "\n".join(lines) + "\n").encode() + b"u1,i1,4,\xff\xfe1709028000\n" + good[-1].encode() + b"\n"
    src = write(tmp_path, "bad/log.csv", body)
    expected.append(("invalid_utf8", len(lines) + 2))
    out = run(spark, settings, src)
    quarantined = rows(spark, settings, lake.QUARANTINE, ["reason", "line_number"])
    assert quarantined == sorted(expected)
    valid = len(lines) + 3 - 1 - len(expected)
    assert out["rows_valid"] == valid and out["rows_read"] == valid + len(expected)
    assert out["quarantine_reasons"]["bad_column_count"] == 2 and sum(out["quarantine_reasons"].values()) == 13
    raw = {r.reason: r for r in table(spark, settings, lake.QUARANTINE).collect()}
    assert raw["non_numeric_rating"].raw == f"u1,i1,four,{T0}" and raw["nul_byte"].raw == f"u1,i\x001,4,{T0}"
    assert raw["invalid_utf8"].source_file == str(src) and "\ufffd" in raw["invalid_utf8"].raw
    # No valid row is lost; the quoted id keeps its comma; an implicit (empty) rating stays NULL.
    assert table(spark, settings, lake.INTERACTIONS).count() == out["interactions"] == 12
    quoted = table(spark, settings, lake.INTERACTIONS).where("user_id = 'g,q'").first()
    assert quoted.rating is None and quoted.event_ts == datetime(2024, 2, 27, 10, 0)


def test_unparseable_json_lines_are_quarantined(spark, settings, tmp_path):
    src = write(tmp_path, "log.jsonl", "\n".join([
        json.dumps({"uid": "u1", "iid": "i1", "ts": T0, "r": 4}),
        '{"uid": "u2", "iid": ',
        json.dumps({"uid": "u3", "iid": "i3", "ts": "2024-02-27T11:00:00Z"}),
        "not json at all",
    ]) + "\n")
    out = run(spark, settings, src, column_map={"user_id": "uid", "item_id": "iid", "timestamp": "ts",
                                                "rating": "r"})
    assert out["quarantine_reasons"] == {"unparseable": 2}
    assert rows(spark, settings, lake.QUARANTINE, ["reason", "line_number"]) == [("unparseable", 2),
                                                                                 ("unparseable", 4)]
    assert rows(spark, settings, columns=["user_id", "item_id", "rating"]) == [("u1", "i1", 4.0),
                                                                               ("u3", "i3", None)]


def test_missing_required_column_fails_at_once(spark, settings, tmp_path):
    src = write(tmp_path, "log.csv", "uid,item_id,when\nu1,i1,1\n")
    with pytest.raises(MissingColumnsError) as err:
        run(spark, settings, src)
    message = str(err.value)
    assert "user_id" in message and "timestamp" in message and "['uid', 'item_id', 'when']" in message
    assert not lake.exists(settings, lake.INTERACTIONS)


def test_empty_batch_is_a_clean_noop(spark, settings, tmp_path):
    out = run(spark, settings, write(tmp_path, "log.csv", HEADER))
    assert out["empty"] is True and out["rows_read"] == 0 and out["published"] == []
    assert not settings.lake.exists() or not any(settings.lake.iterdir())
