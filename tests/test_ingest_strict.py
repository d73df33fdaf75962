"""Strict parsing: a corpus of bad lines per text format; exact kept / quarantined counts, reasons, lines.

Each corpus is a list of ``(line bytes, expected)``: ``expected`` is the user id the line is kept as, or
``("reason",)`` for a quarantined line. Line numbers are positions in the file (a header is line 1). The
totals asserted next to each corpus are counted by hand from the table.
"""

from __future__ import annotations

from ingest_helpers import rows, run, write

from jobs.core import lake

T0 = 1709028000  # 2024-02-27T10:00:00Z
T = str(T0).encode()


def _ingest(spark, settings, folder, name, header: bytes | None, corpus, **kwargs) -> dict:
    body = (header + b"\n" if header else b"") + b"".join(
        line + (b"" if line.endswith(b"\r\n") else b"\n") for line, _ in corpus)
    src = write(folder, name, body)
    return run(spark, settings, src.parent if "/" in name else src, **kwargs)  # a folder names its format


def _check(spark, settings, out, corpus, *, first_line: int, kept: int, quarantined: int) -> None:
    expected_bad = sorted((e[0], n) for n, (_, e) in enumerate(corpus, first_line) if isinstance(e, tuple))
    expected_users = sorted(e for _, e in corpus if not isinstance(e, tuple))
    assert (len(expected_users), len(expected_bad)) == (kept, quarantined)  # the hand count matches the table
    assert (out["rows_read"], out["rows_valid"], out["rows_quarantined"]) == (kept + quarantined, kept, quarantined)
    assert rows(spark, settings, lake.QUARANTINE, ["reason", "line_number"]) == expected_bad
    assert sorted(r[0] for r in rows(spark, settings, columns=["user_id"])) == expected_users
    reasons: dict[str, int] = {}
    for reason, _ in expected_bad:
        reasons[reason] = reasons.get(reason, 0) + 1
    assert out["quarantine_reasons"] == dict(sorted(reasons.items()))


CSV = [
    (b"u1,i1,4," + T, "u1"),
    (b'"u2",i2,3,' + T, "u2"),
    (b'"u,3",i3,5,' + T, "u,3"),  # an embedded separator
    (b'"say ""hi""",i4,2,' + T, 'say "hi"'),  # doubled quotes
    (b'u5,"i,5",,' + T, "u5"),  # implicit rating
    (b'u6,i6,4,"' + T + b'"', "u6"),
    (b'"12,17,4,874965758', ("unbalanced_quote",)),  # the issue's line: was user 12 / item 17
    (b'u7,i"7",4,' + T, ("stray_quote",)),
    (b'"u8"x,i8,4,' + T, ("stray_quote",)),
    (b'u9, "i9",4,' + T, ("stray_quote",)),  # a space before the opening quote
    (b'"multi', ("unbalanced_quote",)),  # an embedded newline: both physical lines
    (b'line",i10,4,' + T, ("unbalanced_quote",)),
    (b'"u11,i11,4,' + T + b'"', ("bad_column_count",)),  # one quoted field
    (b"u12,i12,4", ("bad_column_count",)),
    (b"u13,i13,4," + T + b",x", ("bad_column_count",)),
    (b"u14;i14;4;" + T, ("bad_column_count",)),
    (b"", ("blank_line",)),
    (b"   ", ("blank_line",)),
    (b"u15,i\x0015,4," + T, ("nul_byte",)),
    (b"u16,i\xff16,4," + T, ("invalid_utf8",)),
    (b'"",i17,4,' + T, ("missing_user_id",)),
    (b"u18,i18,4," + T + b"\r\n", "u18"),  # CRLF
    (b'u19,"",4,' + T, ("missing_item_id",)),
]


def test_generic_csv_corpus(spark, settings, tmp_path):
    out = _ingest(spark, settings, tmp_path, "log.csv", b"user_id,item_id,rating,timestamp", CSV)
    _check(spark, settings, out, CSV, first_line=2, kept=7, quarantined=16)
    issue = [r for r in rows(spark, settings, lake.QUARANTINE, ["line_number", "raw"]) if r[0] == 8]
    assert issue == [(8, '"12,17,4,874965758')]
    assert rows(spark, settings, columns=["user_id", "item_id", "rating"])[:2] == [
        ("say \"hi\"", "i4", 2.0), ("u,3", "i3", 5.0)]


MLCSV = [
    (b"1,10,4.0," + T, "1"),
    (b'"2",10,3.5,' + T, "2"),
    (b'"3,10,4.0,' + T, ("unbalanced_quote",)),
    (b'4,1"0",4.0,' + T, ("stray_quote",)),
    (b"5,10,4.0", ("bad_column_count",)),
    (b"", ("blank_line",)),
    (b"6,10,4.\x000," + T, ("nul_byte",)),
    (b"7,10,\xe9," + T, ("invalid_utf8",)),  # ml-latest is UTF-8: a lone latin-1 byte is broken
    (b"8,10,6.0," + T, ("rating_out_of_range",)),
]


def test_movielens_csv_corpus(spark, settings, tmp_path):
    out = _ingest(spark, settings, tmp_path, "ml/ratings.csv", b"userId,movieId,rating,timestamp", MLCSV)
    assert out["format"] == "mlcsv"
    _check(spark, settings, out, MLCSV, first_line=2, kept=2, quarantined=7)


INTER = [
    (b"1\t7\t4\t" + T, "1"),
    (b'"2\t7\t3\t' + T, '"2'),  # RecBole atomic files have no quoting: a quote is data
    (b"3\t7\t4", ("bad_column_count",)),
    (b"4\t7\t4\t" + T + b"\tx", ("bad_column_count",)),
    (b"5 7 4 " + T, ("bad_column_count",)),  # spaces are no separator
    (b"", ("blank_line",)),
    (b"\t\t\t", ("blank_line",)),
    (b"6\t7\t4\t" + T + b"\x00", ("nul_byte",)),
    (b"7\t\xc3\x28\t4\t" + T, ("invalid_utf8",)),
    (b"8\t7\tfour\t" + T, ("non_numeric_rating",)),
    (b"9\t7\t4\t" + T + b"\r\n", "9"),
]


def test_recbole_inter_corpus(spark, settings, tmp_path):
    header = b"user_id:token\titem_id:token\trating:float\ttimestamp:float"
    out = _ingest(spark, settings, tmp_path, "rb/mini.inter", header, INTER)
    assert out["format"] == "recbole"
    _check(spark, settings, out, INTER, first_line=2, kept=3, quarantined=8)


ML1M = [
    (b"1::10::5::" + T, "1"),
    (b"1::20::3", ("bad_column_count",)),
    (b"1:::30::3::" + T, ("stray_separator",)),
    (b"1::40::3::" + T + b"::9", ("bad_column_count",)),
    (b"1:50:3:" + T, ("stray_separator",)),  # single colons
    (b"", ("blank_line",)),
    (b"1::6\x000::3::" + T, ("nul_byte",)),
    (b"2::7\xe90::4::" + T, "2"),  # MovieLens 1M is latin-1: every byte is a character
    (b"2::80::4::" + T + b":", ("stray_separator",)),
    (b"2::90::x::" + T, ("non_numeric_rating",)),
]


def test_ml1m_double_colon_corpus(spark, settings, tmp_path):
    out = _ingest(spark, settings, tmp_path, "ml-1m/ratings.dat", None, ML1M)
    _check(spark, settings, out, ML1M, first_line=1, kept=2, quarantined=8)
    assert rows(spark, settings, columns=["item_id"]) == [("10",), ("7\xe90",)]


UDATA = [
    (b"1\t10\t5\t" + T, "1"),
    (b"1\t20\t3", ("bad_column_count",)),
    (b"1\t30\t3\t" + T + b"\t", ("bad_column_count",)),  # a trailing tab is a fifth, empty column
    (b"1 40 3 " + T, ("bad_column_count",)),
    (b"  ", ("blank_line",)),
    (b"1\t50\t3\t\x00", ("nul_byte",)),
    (b"2\t70\t4\t" + T, "2"),
    (b"2\t80\t4\tabc", ("bad_timestamp",)),
]


def test_ml100k_udata_corpus(spark, settings, tmp_path):
    out = _ingest(spark, settings, tmp_path, "ml-100k/u.data", None, UDATA)
    assert out["format"] == "ml100k"
    _check(spark, settings, out, UDATA, first_line=1, kept=2, quarantined=6)


def _j(user: bytes, item: bytes = b'"i"', rest: bytes = b',"timestamp":' + T) -> bytes:
    return b'{"user_id":' + user + b',"item_id":' + item + rest + b"}"


JSONL = [
    (_j(b'"u1"', rest=b',"rating":4,"timestamp":' + T), "u1"),
    (b'  { "user_id" : "u2", "item_id": "i2", "timestamp": "2024-02-27T11:00:00Z" }  ', "u2"),
    (_j(b'"u}{3"', b'"i\\"]3"', b',"timestamp":' + T + b',"extra":{"a":[1,{"b":"}"}]}'), "u}{3"),
    (_j(b"4", b"5"), "4"),  # numbers are read as their text
    (b'{"user_id": "u5", "item_id": ', ("unparseable",)),
    (b"not json", ("unparseable",)),
    (b"{'user_id':'u7','item_id':'i7','timestamp':" + T + b"}", ("unparseable",)),
    (_j(b'"u8"', rest=b',"rating":NaN,"timestamp":' + T), ("unparseable",)),
    (_j(b'"u9","user_id":"x"'), ("duplicate_key",)),
    (b"[" + _j(b'"u10"') + b"]", ("not_an_object",)),
    (b"42", ("not_an_object",)),
    (b"null", ("not_an_object",)),
    (_j(b'"u12"') + b" xyz", ("trailing_content",)),
    (_j(b'"u13"') + b'{"user_id":"u13b"}', ("trailing_content",)),
    (_j(b'"u14"') + b"] [ {}", ("trailing_content",)),
    (_j(b'{"id":15}'), ("non_scalar_field",)),
    (_j(b'"u16"', b'["i16"]'), ("non_scalar_field",)),
    (b"", ("blank_line",)),
    (_j(b'"u18"', b'"i\x0018"'), ("nul_byte",)),
    (_j(b'"u19"', b'"\xff"'), ("invalid_utf8",)),
    (b"{}", ("missing_user_id",)),
    (_j(b'"u22"'), "u22"),
]


def test_json_lines_corpus(spark, settings, tmp_path):
    out = _ingest(spark, settings, tmp_path, "log.jsonl", None, JSONL)
    _check(spark, settings, out, JSONL, first_line=1, kept=5, quarantined=17)
    got = rows(spark, settings, columns=["user_id", "item_id"])
    assert ("u}{3", 'i"]3') in got and ("4", "5") in got
