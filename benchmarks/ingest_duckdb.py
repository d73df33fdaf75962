"""The single-machine reference for benchmarks.ingest: the same transform in DuckDB SQL.

Each line is read as one text column and split on the separator (so a line of the wrong width is a
``bad_column_count``, as in ktrec), validated with ``TRY_CAST``, classified once into a temporary table,
then the valid rows are deduped on (user_id, item_id, event_ts) and written as Parquet partitioned by
event_date, the bad rows with their reason and line text. No line numbers (like the minimal Spark job).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path


def ingest_duckdb(csv_path: Path, out_dir: Path, *, batch_date: date, threads: int, min_rating: float = 0.0,
                  max_rating: float = 5.0, max_future_days: int = 1, earliest: str = "1990-01-01") -> dict:
    import duckdb

    out_dir.mkdir(parents=True, exist_ok=True)
    future = (batch_date + timedelta(days=max_future_days + 1)).isoformat()
    con = duckdb.connect()
    con.execute(f"SET threads = {int(threads)}")
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET TimeZone = 'UTC'")  # event_date is the UTC date, as in the lake
    con.execute("""
        CREATE TEMP TABLE classified AS
        WITH lines AS (
            SELECT line, string_split(line, ',') AS f
            FROM read_csv(?, columns = {'line': 'VARCHAR'}, delim = chr(1), quote = '', escape = '',
                          header = true, auto_detect = false, strict_mode = false)
        ), typed AS (
            SELECT line, len(f) AS width, nullif(trim(f[1]), '') AS user_id, nullif(trim(f[2]), '') AS item_id,
                   nullif(trim(f[3]), '') AS rating_text, nullif(trim(f[4]), '') AS ts_text,
                   TRY_CAST(nullif(trim(f[3]), '') AS DOUBLE) AS rating,
                   to_timestamp(TRY_CAST(nullif(trim(f[4]), '') AS BIGINT)) AS event_ts
            FROM lines
        )
        SELECT line, user_id, item_id, rating, event_ts, CASE
            WHEN width <> 4 THEN 'bad_column_count'
            WHEN user_id IS NULL THEN 'missing_user_id'
            WHEN item_id IS NULL THEN 'missing_item_id'
            WHEN rating_text IS NOT NULL AND rating IS NULL THEN 'non_numeric_rating'
            WHEN rating < ? OR rating > ? THEN 'rating_out_of_range'
            WHEN ts_text IS NULL THEN 'missing_timestamp'
            WHEN event_ts IS NULL THEN 'bad_timestamp'
            WHEN event_ts >= CAST(? AS TIMESTAMPTZ) THEN 'future_timestamp'
            WHEN event_ts < CAST(? AS TIMESTAMPTZ) THEN 'too_old_timestamp'
        END AS reason
        FROM typed
    """, [str(csv_path), min_rating, max_rating, future, earliest])
    kept = con.execute(f"""
        COPY (
            SELECT user_id, item_id, CAST(any_value(rating) AS FLOAT) AS rating, event_ts,
                   CAST(CAST(event_ts AS DATE) AS VARCHAR) AS event_date
            FROM classified WHERE reason IS NULL GROUP BY user_id, item_id, event_ts
        ) TO '{out_dir / "interactions"}' (FORMAT parquet, PARTITION_BY (event_date))
    """).fetchone()[0]
    bad = con.execute(f"""
        COPY (SELECT reason, line AS raw FROM classified WHERE reason IS NOT NULL) TO '{out_dir / "bad.parquet"}'
        (FORMAT parquet)
    """).fetchone()[0]
    con.close()
    return {"rows_written": int(kept), "rows_quarantined": int(bad)}
