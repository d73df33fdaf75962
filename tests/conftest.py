"""Shared fixtures: one real local Spark session per test run, and an isolated KTREC_HOME per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.settings import DEFAULT_DATASET, Settings, get_settings

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
ML100K = DEFAULT_DATASET
AMAZON = SHARED / "amazon-scientific"


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    """Embedded settings rooted in a fresh temporary KTREC_HOME (also seen by get_settings())."""
    monkeypatch.setenv("KTREC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KTREC_PROFILE", "local")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """A real local Spark session (2 cores, UTC, loopback), shared by the whole run."""
    from jobs.spark import get_spark

    home = tmp_path_factory.mktemp("spark-home")
    session = get_spark(Settings(home=home, spark={"master": "local[2]", "shuffle_partitions": 2}), "ktrec-tests")
    yield session
    session.stop()
