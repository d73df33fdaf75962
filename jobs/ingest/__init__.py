"""Stage 1, ingest: interaction logs in, lake tables out.

Enters: a dataset folder or file (MovieLens 100K/1M/CSV family, RecBole atomic files, generic CSV/JSON
Lines/Parquet with a column map), read with Spark. ``detect`` names the format, one module per input family
parses it (``movielens``, ``recbole``, ``generic``; line parsing in ``text``), ``batch`` classifies each row
(valid or quarantined with a reason) and ``write`` publishes. Leaves: the lake tables ``interactions``
(partitioned by event date), ``items``, ``users``, ``quarantine`` and a per-batch manifest.
"""

from jobs.ingest.batch import run

__all__ = ["run"]
