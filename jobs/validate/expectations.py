"""The expectation suites of the ktrec gates, as plain functions of the settings (no I/O).

Suites: ``<table>_schema`` (columns and Spark types from jobs/core/lake.py), ``interactions``, ``items``,
``users`` (non-null ids, ranges, the event key unique, minimum row counts), ``batch`` (facts Spark
computes across tables: orphan interactions and the ingest quarantine ratio, one row checked by
expectations so they appear in Data Docs like the rest) and ``profiles_user`` / ``profiles_item``.
"""

from __future__ import annotations

from datetime import datetime

import great_expectations.expectations as gxe
from great_expectations.core import ExpectationSuite
from pyspark.sql.types import StructType

from jobs.core.lake import EVENT_KEY

# Facts computed by jobs/validate/gate.py for the `batch` suite, one row.
ORPHAN_ITEMS = "orphan_item_rows"
ORPHAN_USERS = "orphan_user_rows"
QUARANTINE_RATIO = "quarantine_ratio"
# Derived column the profile gate adds: the length of each embedding.
EMBEDDING_DIM = "embedding_dim"


def schema_suite(*, table: str, schema: StructType) -> ExpectationSuite:
    """Exactly these columns, each of its Spark type (GE compares the Spark type class name).

    Run on the Spark engine always: it reads only the DataFrame's schema, so it costs no Spark job.
    """
    expectations: list = [gxe.ExpectTableColumnsToMatchSet(column_set=schema.names, exact_match=True)]
    for field in schema.fields:
        type_name = type(field.dataType).__name__
        expectations.append(gxe.ExpectColumnValuesToBeOfType(column=field.name, type_=type_name))
    return ExpectationSuite(name=f"{table}_schema", expectations=expectations)


def interactions_suite(
    *, min_rating: float, max_rating: float, earliest: datetime, latest: datetime,
    min_rows: int,
) -> ExpectationSuite:
    """``latest`` is exclusive: the first instant after the last allowed event."""
    return ExpectationSuite(
        name="interactions",
        expectations=[
            gxe.ExpectTableRowCountToBeBetween(min_value=min_rows),
            gxe.ExpectColumnValuesToNotBeNull(column="user_id"),
            gxe.ExpectColumnValuesToNotBeNull(column="item_id"),
            gxe.ExpectColumnValuesToNotBeNull(column="event_ts"),
            # Map expectations skip nulls: a missing rating (implicit feedback) is allowed.
            gxe.ExpectColumnValuesToBeBetween(column="rating", min_value=min_rating, max_value=max_rating),
            gxe.ExpectColumnValuesToBeBetween(
                column="event_ts", min_value=earliest.isoformat(), max_value=latest.isoformat(),
                strict_max=True,
            ),
            gxe.ExpectCompoundColumnsToBeUnique(column_list=EVENT_KEY),
        ],
    )


def catalog_suite(*, name: str, id_column: str, min_rows: int) -> ExpectationSuite:
    """Items or users: a non-null unique id, enough rows."""
    return ExpectationSuite(
        name=name,
        expectations=[
            gxe.ExpectTableRowCountToBeBetween(min_value=min_rows),
            gxe.ExpectColumnValuesToNotBeNull(column=id_column),
            gxe.ExpectColumnValuesToBeUnique(column=id_column),
        ],
    )


def batch_suite(*, max_quarantine_ratio: float) -> ExpectationSuite:
    """Cross-table facts: no interaction may point at an unknown item or user; few rows quarantined."""
    return ExpectationSuite(
        name="batch",
        expectations=[
            gxe.ExpectColumnMaxToBeBetween(column=ORPHAN_ITEMS, max_value=0),
            gxe.ExpectColumnMaxToBeBetween(column=ORPHAN_USERS, max_value=0),
            gxe.ExpectColumnMaxToBeBetween(column=QUARANTINE_RATIO, max_value=max_quarantine_ratio),
        ],
    )


def profile_suite(*, name: str, min_rows: int) -> ExpectationSuite:
    """A profile table plus its derived ``embedding_dim`` column."""
    return ExpectationSuite(
        name=name,
        expectations=[
            gxe.ExpectTableRowCountToBeBetween(min_value=min_rows),
            gxe.ExpectColumnValuesToNotBeNull(column="entity_id"),
            gxe.ExpectColumnValuesToNotBeNull(column="profile_text"),
            # Non-empty: at least one non-space character.
            gxe.ExpectColumnValuesToMatchRegex(column="profile_text", regex=r"\S"),
            gxe.ExpectColumnValuesToNotBeNull(column="embedding"),
            gxe.ExpectColumnValuesToBeBetween(column=EMBEDDING_DIM, min_value=1),
            # One embedding length across the whole table (and so across profile versions).
            gxe.ExpectColumnUniqueValueCountToBeBetween(column=EMBEDDING_DIM, min_value=1, max_value=1),
            gxe.ExpectColumnValuesToNotBeNull(column="source_hash"),
            gxe.ExpectColumnValuesToNotBeNull(column="generator"),
            gxe.ExpectColumnValuesToNotBeNull(column="event_timestamp"),
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["entity_id", "event_timestamp"]),
        ],
    )
