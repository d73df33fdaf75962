"""One atomic batch: every table of a batch (and its manifest) becomes visible with one rename of
``lake/_current``; a job killed anywhere before it leaves readers the previous batch whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from ingest_helpers import DAY, lake_state, rows, run, write

from jobs.core import lake
from jobs.core.settings import Settings
from jobs.ingest import write as ingest_write

REPO = Path(__file__).resolve().parents[1]
T0 = 1709028000
DAY2 = date(2024, 3, 2)


def _ml1m(folder: Path, ratings: str, movies: str, users: str) -> Path:
    write(folder, "ratings.dat", ratings)
    write(folder, "movies.dat", movies)
    write(folder, "users.dat", users)
    return folder


def _batches(tmp_path: Path) -> tuple[Path, Path]:
    one = _ml1m(tmp_path / "one" / "ml-1m", f"1::10::5::{T0}\n2::20::3::{T0 + 86400}\n",
                "10::Heat (1995)::Action\n20::Alien (1979)::Horror\n", "1::F::1::10::48067\n2::M::56::16::70072\n")
    # The second batch: new users and items, a changed title, and the lake's first quarantined line.
    two = _ml1m(tmp_path / "two" / "ml-1m", f"3::30::4::{T0 + 3 * 86400}\n1::30::2::{T0 + 60}\n3::30\n",
                "10::Heat (1995)::Crime\n30::Brazil (1985)::Comedy\n", "3::M::25::4::10001\n")
    return one, two


def _agree(spark, settings, out: dict) -> None:
    """The tables of the lake's current batch agree with each other and with its manifest."""
    state = lake_state(spark, settings)
    items = {r[0] for r in rows(spark, settings, lake.ITEMS, ["item_id"])}
    users = {r[0] for r in rows(spark, settings, lake.USERS, ["user_id"])}
    events = rows(spark, settings, columns=["user_id", "item_id"])
    assert {i for _, i in events} <= items and {u for u, _ in events} <= users
    assert (len(events), len(items), len(users)) == (out["interactions"], out["items"], out["users"])
    day = [r for r in rows(spark, settings, lake.QUARANTINE, ["batch_date", "line_number"]) if r[0] == DAY2]
    assert len(day) == out["rows_quarantined"]
    assert state["manifests"][f"{DAY2}.json"] == {k: v for k, v in out.items() if k != "seconds"}


def test_failure_while_staging_leaves_the_previous_batch(spark, settings, tmp_path, monkeypatch):
    one, two = _batches(tmp_path)
    run(spark, settings, one)
    before, generation = lake_state(spark, settings), lake.snapshot(settings)
    assert lake.QUARANTINE not in before  # the first batch had no bad line
    real = ingest_write.stage_entities

    def users_fail(*args, **kwargs):  # interactions and items are staged by then
        if kwargs["name"] == lake.USERS:
            raise RuntimeError("killed between table writes")
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest_write, "stage_entities", users_fail)
    with pytest.raises(RuntimeError, match="between table writes"):
        run(spark, settings, two, batch_date=DAY2)
    assert lake.snapshot(settings) == generation and lake_state(spark, settings) == before
    monkeypatch.undo()
    out = run(spark, settings, two, batch_date=DAY2)
    _agree(spark, settings, out)
    assert (out["interactions"], out["items"], out["users"], out["rows_quarantined"]) == (4, 3, 3, 1)


def test_kill_9_inside_the_commit_then_rerun(spark, settings, tmp_path):
    """A real ingest process SIGKILLs itself at the commit's rename, with the new generation and the new
    table's link already written: readers still see the first batch whole; a rerun completes it."""
    one, two = _batches(tmp_path)
    run(spark, settings, one)
    before, generation = lake_state(spark, settings), lake.snapshot(settings)
    script = (
        "import os, signal, sys\n"
        "from jobs.core import lake\n"
        "real = lake._link\n"
        "def link(path, target):\n"
        "    if path.name == lake.CURRENT:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    real(path, target)\n"
        "lake._link = link\n"
        "from jobs.cli import app\n"
        "sys.argv[0] = 'ktrec'\n"
        "app()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "KTREC_HOME": str(settings.home), "KTREC_PROFILE": "local",
           "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable, "KTREC_SPARK__MASTER": "local[1]"}
    proc = subprocess.Popen([sys.executable, "-c", script, "ingest", "--source", str(two), "--batch-date",
                             DAY2.isoformat()], cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert proc.wait(timeout=400) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the JVM child, if it outlived its parent
        except ProcessLookupError:
            pass
    # It got as far as the commit: a generation naming all five tables exists, unreferenced.
    newest = max((settings.lake / lake.GENERATIONS).iterdir())
    assert newest != generation and (newest / lake.TABLES_FILE).is_file()
    assert (settings.lake / lake.QUARANTINE).is_symlink() and not lake.exists(settings, lake.QUARANTINE)
    assert lake.snapshot(settings) == generation and lake_state(spark, settings) == before
    out = run(spark, settings, two, batch_date=DAY2)
    _agree(spark, settings, out)
    assert lake.snapshot(settings) != generation


def _stage(settings: Settings, name: str, text: str) -> Path:
    staged = lake.staging_dir(settings, name)
    staged.mkdir()
    (staged / "data.txt").write_text(text)
    return staged


def test_commit_flips_every_table_with_one_rename(tmp_path):
    settings = Settings(home=tmp_path)
    lake.commit(settings, {"a": _stage(settings, "a", "a1"), "splits/b": _stage(settings, "splits/b", "b1")})
    pinned = lake.snapshot(settings)
    lake.commit(settings, {"a": _stage(settings, "a", "a2"), "splits/b": _stage(settings, "splits/b", "b2")})
    read = lambda root, name: (root / name / "data.txt").read_text()  # noqa: E731
    assert (read(settings.lake, "a"), read(settings.lake, "splits/b")) == ("a2", "b2")
    assert (read(pinned, "a"), read(pinned, "splits/b")) == ("a1", "b1")  # a snapshot stays on its commit
    assert os.readlink(settings.lake / "splits/b") == "../_current/splits/b"
    lake.publish(settings, "c", _stage(settings, "c", "c1"))  # a one-table commit keeps the others
    assert (read(settings.lake, "a"), read(settings.lake, "c")) == ("a2", "c1")


def test_pruning_keeps_every_version_a_kept_generation_names(tmp_path):
    settings = Settings(home=tmp_path)
    lake.publish(settings, "slow", _stage(settings, "slow", "s1"))
    for i in range(6):  # many commits of another table: "slow" keeps its only version
        lake.publish(settings, "fast", _stage(settings, "fast", f"f{i}"))
    assert len(list((settings.lake / lake.GENERATIONS).iterdir())) == 3
    assert len(list((settings.lake / lake.VERSIONS / "fast").iterdir())) == 3
    assert (settings.lake / "slow" / "data.txt").read_text() == "s1"
    abandoned = _stage(settings, "slow", "never committed")  # a crashed job's leftover
    lake.publish(settings, "slow", _stage(settings, "slow", "s2"))
    assert abandoned.exists()  # within the newest three versions
    for i in range(3):
        lake.publish(settings, "slow", _stage(settings, "slow", f"s{3 + i}"))
    assert not abandoned.exists() and len(list((settings.lake / lake.VERSIONS / "slow").iterdir())) == 3


def test_a_lake_of_the_older_layout_is_adopted(tmp_path):
    settings = Settings(home=tmp_path)
    old = settings.lake / lake.VERSIONS / "interactions" / "20240101T000000000000-00000000"
    old.mkdir(parents=True)
    (old / "data.txt").write_text("old")
    os.symlink(old, settings.lake / "interactions", target_is_directory=True)
    (settings.lake / "_manifests" / "ingest").mkdir(parents=True)
    (settings.lake / "_manifests" / "ingest" / "2024-01-01.json").write_text("{}")
    lake.publish(settings, "items", _stage(settings, "items", "new"))
    assert os.readlink(settings.lake / "interactions") == "_current/interactions"
    assert (settings.lake / "interactions" / "data.txt").read_text() == "old"
    ingest_write.write_manifest(settings, {"batch_date": "2024-01-02"})
    assert sorted(p.name for p in ingest_write.manifest_path(settings, DAY).parent.iterdir()) == [
        "2024-01-01.json", "2024-01-02.json"]
    assert lake.current_version(settings, lake.INGEST_MANIFESTS) is not None
