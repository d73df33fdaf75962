"""benchmarks.capacity on hand-made reports: the arithmetic of two steps by hand, and "not measured" (never an
invented figure) when a report is missing."""

from __future__ import annotations

import json

import pytest

from benchmarks import capacity

INGEST = {
    "machine": {"cpus": 4, "spark_master": "local[4]"},
    "results": [
        {"rows": 1000, "csv_mb": 0.03, "spark": {"rows_per_s": 2000.0}},
        {"rows": 2000, "csv_mb": 0.05, "spark": {"rows_per_s": 4000.0}},  # the largest run is the one used
    ],
}
FEAST = {
    "users": 10, "items": 20, "embedding_dim": 8, "interactions": 100, "online_store": "redis", "cpus": 2,
    "load_average": [1.0, 1.0, 1.0], "seconds": {"materialize_initial": 6.0, "stats_job_as_of_2": 3.0},
}


def model(tmp_path, reports: dict, *extra: str) -> dict:
    folder = tmp_path / "reports"
    folder.mkdir()
    for name, body in reports.items():
        (folder / f"{name}.json").write_text(json.dumps(body))
    md, out = tmp_path / "capacity.md", tmp_path / "capacity.json"
    args = ["--reports", str(folder), "--out-md", str(md), "--out-json", str(out), "--events-per-day", "7200000",
            "--nodes", "2", "--cores-per-node", "3", "--gpus", "1", "--usd-per-node-hour", "1.5",
            "--users", "1000", "--items", "100", "--change-rate", "0.1", *extra]
    assert capacity.main(args) == 0
    result = json.loads(out.read_text())
    result["markdown"] = md.read_text()
    result["by_step"] = {s["step"].split(" ")[0]: s for s in result["steps"]}
    return result


def test_ingest_hours_by_hand(tmp_path):
    res = model(tmp_path, {"ingest": INGEST})
    ingest = res["by_step"]["ingest"]
    per_core = 4000.0 / 4  # results[rows=2000].spark.rows_per_s / machine.cpus
    hours = 7_200_000 / (per_core * 3 * 2) / 3600  # events / (rows_per_s_per_core x cores x nodes) / 3600
    assert hours == pytest.approx(1 / 3)
    assert ingest["rate"]["value"] == pytest.approx(per_core)
    assert ingest["rate"]["kind"] == "measured" and "ingest.json" in ingest["rate"]["source"]
    assert ingest["hours"] == pytest.approx(hours)
    assert ingest["cost_usd"] == pytest.approx(hours * 2 * 1.5)  # hours x nodes x $/node-hour


def test_materialize_rows_per_s_by_hand(tmp_path):
    res = model(tmp_path, {"ingest": INGEST, "feast_store": FEAST})
    step = res["by_step"]["materialize"]
    rate = 2 * (10 + 20) / 6.0  # profile + stats view, one row per entity, over seconds.materialize_initial
    rows = 1000 + 100 + round(0.1 * (1000 + 100))  # every entity's stats row + the changed profiles
    assert step["rate"]["value"] == pytest.approx(rate)
    assert step["hours"] == pytest.approx(rows / rate / 3600)
    assert "stand-in" not in step["rate"]["source"]  # measured into Redis: no stand-in caveat


def test_missing_reports_say_not_measured(tmp_path):
    res = model(tmp_path, {"ingest": INGEST}, "--gpus", "0")
    for name in ("materialize", "training", "profiles", "embedding", "stats"):
        step = res["by_step"][name]
        assert step["hours"] is None and step["cost_usd"] is None and step["basis"] == "not measured", name
        assert step["rate"]["value"] is None and step["rate"]["kind"] == "not measured", name
        row = next(line for line in res["markdown"].splitlines() if line.startswith(f"| {name}"))
        assert "not measured" in row
    assert res["bottleneck"].startswith("ingest")
    assert res["total_hours_known"] == pytest.approx(res["by_step"]["ingest"]["hours"], abs=1e-4)
    assert res["storage"]["online_store"]["value"] is None  # no profile or feast report: no invented row size


def test_no_ddp_report_marks_the_efficiency_assumed(tmp_path):
    res = model(tmp_path, {"ingest": INGEST})
    eff = res["figures"]["training"]["ddp_efficiency"]
    assert eff["kind"] == "assumed" and "ASSUMED" in eff["source"] and eff["value"] == 0.7
