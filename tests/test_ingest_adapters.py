"""Every adapter on a small hand-made fixture: format detection, ids, ratings, timestamps, items, users."""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd
import pytest
from ingest_helpers import rows, run, table, write

from jobs.core import lake
from jobs.ingest.detect import detect
from jobs.ingest.text import MissingColumnsError

T0 = 1709028000  # 2024-02-27T10:00:00Z
EPOCH = datetime(2000, 1, 1)  # settings.ingest.synthetic_epoch


def test_ml1m_double_colon_files(spark, settings, tmp_path):
    folder = tmp_path / "ml-1m"
    write(folder, "ratings.dat", f"1::10::5::{T0}\n1::20::3::{T0 + 5}\n2::10::4\n")
    write(folder, "movies.dat", "Caf\xe9 Society (2016)::Drama".join(["10::", "\n"]).encode("latin-1")
          + b"20::Heat (1995)::Action|Crime|Thriller\n")
    write(folder, "users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n")
    assert detect(folder) == "ml1m"
    out = run(spark, settings, folder)
    assert out["format"] == "ml1m" and out["quarantine_reasons"] == {"bad_column_count": 1}
    assert rows(spark, settings, columns=["user_id", "item_id", "rating"]) == [("1", "10", 5.0), ("1", "20", 3.0)]
    items = {r.item_id: r for r in table(spark, settings, lake.ITEMS).collect()}
    assert (items["10"].title, items["10"].year) == ("Caf\xe9 Society (2016)", 2016)
    assert items["20"].genres == "Action|Crime|Thriller"
    users = {r.user_id: r for r in table(spark, settings, lake.USERS).collect()}
    one = users["1"]
    assert (one.gender, one.age, one.occupation, one.zip) == ("F", 1, "K-12 student", "48067")
    assert users["2"].occupation == "self-employed"


def test_movielens_csv_family_with_quotes_and_tags(spark, settings, tmp_path):
    folder = tmp_path / "ml-latest-small"
    write(folder, "ratings.csv", f"userId,movieId,rating,timestamp\n1,1,4.0,{T0}\n1,2,3.5,{T0 + 1}\n2,2,0.5,{T0 + 2}\n")
    write(folder, "movies.csv", 'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n'
          '2,"American President, The (1995)",Comedy|Drama|Romance\n')
    write(folder, "tags.csv", f"userId,movieId,tag,timestamp\n1,2,politics,{T0}\n2,2,\"funny, smart\",{T0}\n")
    assert detect(folder) == "mlcsv"
    out = run(spark, settings, folder)
    assert out["rows_valid"] == 3 and out["items"] == 2 and out["users"] == 2
    assert rows(spark, settings, columns=["user_id", "item_id", "rating"])[1] == ("1", "2", 3.5)
    item = table(spark, settings, lake.ITEMS).where("item_id = '2'").first()
    assert (item.title, item.year) == ("American President, The (1995)", 1995)
    assert item.description == "tags: funny, smart, politics"


def test_recbole_atomic_files(spark, settings, tmp_path):
    folder = tmp_path / "rb"
    write(folder, "mini.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
          f"1\t7\t4\t{T0}\n2\t7\t2.5\t{T0 + 86400}\n2\t8\tx\t{T0}\n")
    write(folder, "mini.item", "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
          "7\tHeat\t1995\tAction Crime\n8\tAlien\t1979\tHorror\n")
    write(folder, "mini.user", "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
          "1\t30\tF\twriter\t12345\n2\t40\tM\tother\t54321\n")
    assert detect(folder) == "recbole"
    out = run(spark, settings, folder)
    assert out["quarantine_reasons"] == {"non_numeric_rating": 1}
    assert rows(spark, settings, columns=["user_id", "item_id", "rating", "ts_synthetic"]) == [
        ("1", "7", 4.0, False), ("2", "7", 2.5, False)]
    items = rows(spark, settings, lake.ITEMS, ["item_id", "title", "year", "genres"])
    assert items == [("7", "Heat", 1995, "Action Crime"), ("8", "Alien", 1979, "Horror")]
    assert rows(spark, settings, lake.USERS, ["user_id", "zip"]) == [("1", "12345"), ("2", "54321")]


def test_recbole_sequences_with_unisrec_maps(spark, settings, tmp_path):
    folder = tmp_path / "seq"
    head = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    write(folder, "S.train.inter", head + "0\t0\t1\n0\t0 1\t2\n")  # prefixes, ignored: test has it all
    write(folder, "S.valid.inter", head + "0\t0 1\t2\n1\t2\t0\n")
    write(folder, "S.test.inter", head + "0\t0 1 2\t1\n1\t2 0\t3\n1\n")  # item 1 twice; a broken line
    write(folder, "S.user2index", "ALICE\t0\nBOB\t1\n")
    write(folder, "S.item2index", "A0\t0\nA1\t1\nA2\t2\n")  # no index 3: quarantined, not invented
    write(folder, "S.text", "item_id:token\ttext:token_seq\nA0\tRed pen. Office. Acme. \n"
          "A1\tBook vol. 2. Books Fiction. Pub Co. \n")
    out = run(spark, settings, folder)
    assert out["quarantine_reasons"] == {"bad_column_count": 1, "unknown_item_index": 1}
    q = rows(spark, settings, lake.QUARANTINE, ["reason", "line_number"])
    assert q == [("bad_column_count", 4), ("unknown_item_index", 3)]
    inter = table(spark, settings, lake.INTERACTIONS).orderBy("user_id", "event_ts").collect()
    assert [(r.user_id, r.item_id) for r in inter] == [
        ("ALICE", "A0"), ("ALICE", "A1"), ("ALICE", "A2"), ("ALICE", "A1"), ("BOB", "A2"), ("BOB", "A0")]
    assert all(r.ts_synthetic and r.rating is None for r in inter)
    assert [(r.event_ts - EPOCH).total_seconds() for r in inter[:4]] == [0, 1, 2, 3]
    item = table(spark, settings, lake.ITEMS).where("item_id = 'A1'").first()
    assert (item.title, item.categories, item.brand) == ("Book vol. 2", "Books Fiction", "Pub Co")
    assert out["users"] == 2 and out["items"] == 3  # A2 has no text but is seen in events


def test_generic_logs_with_column_mapping(spark, settings, tmp_path):
    mapping = {"user_id": "uid", "item_id": "sku", "timestamp": "at", "rating": "stars"}
    events = [{"uid": "u1", "sku": "s1", "at": T0, "stars": 5}, {"uid": "u2", "sku": "s2", "at": T0 + 1, "stars": 4}]
    write(tmp_path, "a.csv", "uid,sku,stars,at\n" + "".join(f"{e['uid']},{e['sku']},{e['stars']},{e['at']}\n"
                                                           for e in events))
    write(tmp_path, "j/a.jsonl", "".join(json.dumps(e) + "\n" for e in events))
    pq_dir = tmp_path / "p"
    pq_dir.mkdir()
    frame = pd.DataFrame(events).assign(at=lambda d: pd.to_datetime(d["at"], unit="s", utc=True))
    frame.to_parquet(pq_dir / "a.parquet")
    expected = [("u1", "s1", 5.0, datetime(2024, 2, 27, 10)), ("u2", "s2", 4.0, datetime(2024, 2, 27, 10, 0, 1))]
    for source, fmt in ((tmp_path / "a.csv", "csv"), (tmp_path / "j", "jsonl"), (pq_dir, "parquet")):
        assert detect(source) == fmt
        out = run(spark, settings, source, column_map=mapping)
        assert out["format"] == fmt and out["rows_valid"] == 2
        assert rows(spark, settings, columns=["user_id", "item_id", "rating", "event_ts"]) == expected
    with pytest.raises(MissingColumnsError, match="present columns"):
        run(spark, settings, pq_dir, column_map={"user_id": "uid", "item_id": "nope", "timestamp": "at"})
