"""Where a Spark application's time went, from its event log (``spark.eventLog.enabled``).

:func:`eventlog_conf` gives the options that make Spark write one uncompressed JSON-lines log per
application into a folder; :func:`summarize` reads it back: the number of jobs and stages that ran, the
wall time of each job and the executors' task time, grouped by the job's description
(``SparkContext.setJobDescription``, else the SQL query's), the summed stage time, and how many times the
input files were scanned (bytes read by stages that scan text or CSV, over the files' size). No UI or
REST server is needed.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

SOURCE_SCANS = ("Scan text", "Scan csv")


def eventlog_conf(folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    return {"spark.eventLog.enabled": "true", "spark.eventLog.dir": folder.resolve().as_uri(),
            "spark.eventLog.compress": "false", "spark.eventLog.rolling.enabled": "false"}


def _log_file(folder: Path) -> Path:
    logs = sorted((p for p in folder.iterdir() if p.is_file()), key=lambda p: p.stat().st_mtime)
    if not logs:
        raise FileNotFoundError(f"no Spark event log in {folder}")
    return logs[-1]


def _scopes(stage: dict) -> list[str]:
    return [json.loads(rdd["Scope"]).get("name", "") for rdd in stage.get("RDD Info", []) if rdd.get("Scope")]


def _scans_source(stage: dict) -> bool:
    return any(name.startswith(SOURCE_SCANS) for name in _scopes(stage))


def _reads_cache(stage: dict) -> bool:
    return any(name.startswith("InMemoryTableScan") for name in _scopes(stage))


def _accumulable(stage: dict, name: str) -> int:
    return sum(int(a.get("Value", 0)) for a in stage.get("Accumulables", []) if a.get("Name") == name)


def summarize(folder: Path, *, source_bytes: int | None = None) -> dict:
    """Jobs, stages and their times from the newest event log in ``folder`` (see the module docstring)."""
    jobs: dict[int, dict] = {}
    stages, sql, stage_label = [], {}, {}
    with open(_log_file(folder), encoding="utf-8") as handle:
        for line in handle:
            event = json.loads(line)
            kind = event.get("Event")
            if kind.endswith("SQLExecutionStart"):
                sql[str(event["executionId"])] = event.get("description") or ""
            elif kind == "SparkListenerJobStart":
                props = event.get("Properties") or {}
                label = (props.get("spark.job.description") or sql.get(props.get("spark.sql.execution.id", ""))
                         or props.get("callSite.short") or "?")
                jobs[event["Job ID"]] = {"label": label, "start": event["Submission Time"]}
                for stage_id in event.get("Stage IDs", []):
                    stage_label[stage_id] = label
            elif kind == "SparkListenerJobEnd" and event["Job ID"] in jobs:
                jobs[event["Job ID"]]["end"] = event["Completion Time"]
            elif kind == "SparkListenerStageCompleted":
                stages.append(event["Stage Info"])
    by_label: dict[str, dict] = defaultdict(lambda: {"jobs": 0, "seconds": 0.0, "task_seconds": 0.0,
                                                          "task_cpu_seconds": 0.0})
    for job in jobs.values():
        entry = by_label[job["label"]]
        entry["jobs"] += 1
        entry["seconds"] += (job.get("end", job["start"]) - job["start"]) / 1000
    for stage in stages:
        label = stage_label.get(stage["Stage ID"], "?")
        by_label[label]["task_seconds"] += _accumulable(stage, "internal.metrics.executorRunTime") / 1000
        by_label[label]["task_cpu_seconds"] += _accumulable(stage, "internal.metrics.executorCpuTime") / 1e9
    # A stage that reads a persisted frame lists the scan in its lineage too; only one without a cache
    # read scans the file (a cache partition evicted and recomputed would be missed).
    scans = [s for s in stages if _scans_source(s) and not _reads_cache(s)]
    source_read = sum(_accumulable(s, "internal.metrics.input.bytesRead") for s in scans)
    stage_seconds = sum((s.get("Completion Time", 0) - s.get("Submission Time", 0)) / 1000 for s in stages)
    return {
        "jobs": len(jobs), "stages": len(stages),
        "source_scan_stages": len(scans),
        "cache_read_stages": sum(_reads_cache(s) for s in stages),
        "source_passes": round(source_read / source_bytes, 2) if source_bytes else None,
        "job_seconds": round(sum(e["seconds"] for e in by_label.values()), 2),
        "stage_seconds": round(stage_seconds, 2),
        "task_cpu_seconds": round(sum(_accumulable(s, "internal.metrics.executorCpuTime") for s in stages) / 1e9, 2),
        "by_job": {k: {"jobs": v["jobs"], "seconds": round(v["seconds"], 2),
                       "task_seconds": round(v["task_seconds"], 2),
                       "task_cpu_seconds": round(v["task_cpu_seconds"], 2)}
                   for k, v in sorted(by_label.items(), key=lambda kv: -kv[1]["seconds"])},
    }
