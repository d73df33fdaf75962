"""Great Expectations 1.x plumbing shared by the lake gate and the profile gate.

The context is ephemeral (built in memory in ~50 ms, nothing to race on between concurrent runs) except for
two folders under ``settings.gx_dir``: the validation results store (so Data Docs keep the history of every
run) and the Data Docs site itself (``settings.data_docs``). Batches are Spark DataFrames validated through
GE's fluent Spark datasource (schemas, so types are checked as Spark types, and tables too large for the
driver) or collected with Arrow and validated by the pandas datasource: on small tables GE's Spark engine
runs one Spark job per metric and is 10-20x slower than pandas.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import great_expectations as gx
from great_expectations.core import ExpectationSuite, ExpectationSuiteValidationResult
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier
from pyspark.sql import DataFrame

from jobs.core.settings import Settings

log = logging.getLogger(__name__)

SITE = "ktrec"
SPARK = "spark"
PANDAS = "pandas"
# How many offending values a failure message quotes.
EXAMPLES = 5


@dataclass(frozen=True)
class Failure:
    """One failed expectation, in the words a person reading a failed DAG run needs."""

    suite: str
    expectation: str
    column: str
    observed: str

    def __str__(self) -> str:
        return f"[{self.suite}] {self.expectation} on {self.column or '(table)'}: observed {self.observed}"


class ValidationFailed(RuntimeError):
    """Raised by a gate when a batch breaks an expectation; the message lists every failure."""

    def __init__(self, message: str, *, failures: list[Failure] | None = None, docs: Path | None = None):
        super().__init__(message)
        self.failures = failures or []
        self.docs = docs

    @classmethod
    def from_failures(cls, title: str, failures: list[Failure], docs: Path | None) -> ValidationFailed:
        lines = [f"{title}: {len(failures)} expectation(s) failed"] + [f"  - {f}" for f in failures]
        if docs is not None:
            lines.append(f"  Data Docs: {docs}")
        return cls("\n".join(lines), failures=failures, docs=docs)


def build_context(settings: Settings) -> Any:
    """An in-memory context whose validation results and Data Docs live on disk under ``gx_dir``."""
    defaults = InMemoryStoreBackendDefaults()
    stores = dict(defaults.stores)
    stores[defaults.validation_results_store_name] = {
        "class_name": "ValidationResultsStore",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(settings.gx_dir / "validations"),
        },
    }
    site = {
        "class_name": "SiteBuilder",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend", "base_directory": str(settings.data_docs),
        },
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    config = DataContextConfig(
        store_backend_defaults=defaults,
        stores=stores,
        data_docs_sites={SITE: site},
        analytics_enabled=False,  # no network here; GE would otherwise try to post usage events
        progress_bars=ProgressBarsConfig(globally=False),
    )
    context = gx.get_context(project_config=config, mode="ephemeral")
    # persist=False: the gate caches (and releases) its frames itself.
    context.data_sources.add_spark(SPARK, persist=False)
    context.data_sources.add_pandas(PANDAS)
    return context


def new_run_id(label: str) -> RunIdentifier:
    """One run id shared by the suites of one gate run: Data Docs group them, and only they get rendered."""
    now = datetime.now(UTC)
    return RunIdentifier(run_name=f"{label}@{now:%Y%m%dT%H%M%S%fZ}", run_time=now)


def validate(
    context: Any, *, suite: ExpectationSuite, frame: DataFrame, engine: str, run_id: RunIdentifier
) -> ExpectationSuiteValidationResult:
    """Validate one Spark DataFrame against ``suite`` on GE's ``engine`` ("spark" or "pandas": the frame is
    collected to the driver first); the result is stored for Data Docs."""
    asset = context.data_sources.get(engine).add_dataframe_asset(suite.name)
    batch = asset.add_batch_definition_whole_dataframe("whole")
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=suite.name, data=batch, suite=context.suites.add(suite))
    )
    data = frame.toPandas() if engine == PANDAS else frame
    result = definition.run(batch_parameters={"dataframe": data}, result_format="BASIC", run_id=run_id)
    log.info("suite %s (%s): %s", suite.name, engine, "passed" if result.success else "FAILED")
    return result


def failures(result: ExpectationSuiteValidationResult) -> list[Failure]:
    """The failed expectations of one suite run, each with its column and observed value."""
    found = []
    for item in result.results:
        if item.success:
            continue
        config = item.expectation_config
        kwargs = config.kwargs
        column = kwargs.get("column") or ", ".join(kwargs.get("column_list") or [])
        found.append(Failure(result.suite_name, config.type, column, _observed(item)))
    return found


def _observed(item: Any) -> str:
    if item.exception_info and item.exception_info.get("raised_exception"):
        return f"error: {item.exception_info.get('exception_message')}"
    result = item.result or {}
    if "observed_value" in result:
        details = result.get("details", {}).get("mismatched")
        return f"{result['observed_value']}" + (f" (mismatched: {details})" if details else "")
    if "unexpected_count" in result:
        examples = result.get("partial_unexpected_list") or []
        percent = result.get("unexpected_percent") or 0.0
        count = result["unexpected_count"]
        return f"{count} unexpected value(s) ({percent:.2f}%), e.g. {examples[:EXAMPLES]}"
    return str(result)


def build_docs(context: Any, settings: Settings, *, run_id: RunIdentifier) -> Path:
    """Render this run's suites and results (earlier runs' pages are already there), then the index of
    every stored run; returns the index.html. Rendering only the new pages keeps the cost flat as the
    history grows."""
    results = [
        key for key in context.validation_results_store.list_keys()
        if key.run_id.run_name == run_id.run_name
    ]
    suites = [ExpectationSuiteIdentifier(name=s.name) for s in context.suites.all()]
    context.build_data_docs(site_names=[SITE], resource_identifiers=[*suites, *results])
    return settings.data_docs / "index.html"
