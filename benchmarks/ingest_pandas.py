"""The pandas baseline for benchmarks.ingest: the same transform as jobs.ingest.batch on one generic CSV log.

Parse (C engine, all fields as text), validate with the same rules and reasons, quarantine bad rows with
their line numbers, dedupe on (user_id, item_id, event_ts) keeping the last line, write Parquet
partitioned by event_date with pyarrow. Single process, whole file in memory: that is the comparison.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def ingest_pandas(csv_path: Path, out_dir: Path, *, batch_date: date, min_rating: float = 0.0,
                  max_rating: float = 5.0, max_future_days: int = 1, earliest: str = "1990-01-01") -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    # Whole lines first (the field count is part of validation), then split on the separator.
    lines = pd.read_csv(csv_path, header=None, skiprows=1, names=["line"], sep="\x01", quoting=3, dtype=str,
                        keep_default_na=False, na_filter=False, skip_blank_lines=False, engine="c",
                        encoding_errors="replace")["line"]
    line = np.arange(len(lines)) + 2  # 1-based, after the header
    wrong_count = lines.str.count(",") != 3
    df = lines.str.split(",", n=3, expand=True).reindex(columns=range(4))
    df.columns = ["user_id", "item_id", "rating", "ts"]
    missing_field, extra_field = wrong_count, wrong_count
    rating_num = pd.to_numeric(df["rating"], errors="coerce")
    ts_num = pd.to_numeric(df["ts"], errors="coerce")
    seconds = np.where(ts_num.abs() >= 1e11, ts_num / 1000, ts_num)
    event_ts = pd.to_datetime(seconds, unit="s", errors="coerce")
    future = pd.Timestamp(batch_date + timedelta(days=max_future_days + 1))
    has_rating = df["rating"].fillna("") != ""
    text = lines
    conditions = [
        text.str.contains("\ufffd", regex=False), text.str.contains("\x00", regex=False),
        missing_field | extra_field,
        df["user_id"].fillna("") == "", df["item_id"].fillna("") == "",
        has_rating & rating_num.isna(),
        has_rating & ((rating_num < min_rating) | (rating_num > max_rating)),
        df["ts"].fillna("") == "", event_ts.isna(), event_ts >= future, event_ts < pd.Timestamp(earliest),
    ]
    reasons = ["invalid_utf8", "nul_byte", "bad_column_count", "missing_user_id", "missing_item_id",
               "non_numeric_rating", "rating_out_of_range", "missing_timestamp", "bad_timestamp",
               "future_timestamp", "too_old_timestamp"]
    reason = np.select(conditions, reasons, default="")
    bad = reason != ""
    quarantine = pd.DataFrame({"reason": reason[bad], "source_file": str(csv_path), "line_number": line[bad],
                               "raw": lines[bad].to_numpy()})
    good = pd.DataFrame({"user_id": df["user_id"][~bad], "item_id": df["item_id"][~bad],
                         "rating": rating_num[~bad].astype("float32"), "event_ts": event_ts[~bad],
                         "source": csv_path.name, "ts_synthetic": False})
    good = good.drop_duplicates(["user_id", "item_id", "event_ts"], keep="last")
    good["event_date"] = good["event_ts"].dt.date.astype(str)
    good["event_ts"] = good["event_ts"].astype("datetime64[us]")
    pq.write_to_dataset(pa.Table.from_pandas(good, preserve_index=False), out_dir / "interactions",
                        partition_cols=["event_date"])
    pq.write_table(pa.Table.from_pandas(quarantine, preserve_index=False), out_dir / "quarantine.parquet")
    return {"rows_valid": int((~bad).sum()), "rows_quarantined": int(bad.sum()), "rows_written": len(good),
            "partitions": int(good["event_date"].nunique())}
