"""Replaying the migrator state is linear: a run loads each file once, ``status`` loads none."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import psycopg2
import pytest

from chatdb.catalog import read_catalog
from chatdb.migrate import loader
from chatdb.migrate.executor import Runner
from chatdb.testing import histories


@pytest.fixture
def loads(monkeypatch) -> Counter[str]:
    """How many times each migration file is loaded (executed) from now on."""
    counted: Counter[str] = Counter()
    load = loader.load

    def counting(directory: Path, name: str) -> loader.MigrationFile:
        counted[name] += 1
        return load(directory, name)

    monkeypatch.setattr(loader, "load", counting)
    return counted


def test_a_run_loads_each_file_once_and_status_none(db_url, tmp_path, loads):
    # Each migration changes the model state the previous ones left (a column on one
    # table), so a wrong or missing state makes the next one fail.
    names = histories.write(tmp_path / "migrations", 30)
    with Runner(db_url, tmp_path / "migrations") as runner:
        assert runner.migrate() == names
        assert loads == Counter(names)
        columns = read_catalog(runner.database).tables[histories.TABLE]
        assert [column.name for column in columns] == ["id"] + [n[-4:] for n in names[1:]]

        loads.clear()
        runner.status()
        assert loads == Counter()

        assert runner.rollback(len(names), yes=True) == names[::-1]
        assert loads == Counter(names)
        assert histories.TABLE not in read_catalog(runner.database).tables


def test_a_retried_migration_rebuilds_its_state_without_loading_again(db_url, tmp_path, loads):
    names = histories.write(tmp_path / "migrations", 6)
    blocker = psycopg2.connect(db_url)
    said: list[str] = []

    def release(attempt: int) -> float:
        """The back-off: the blocking session ends its transaction, nobody sleeps."""
        blocker.rollback()
        return 0.0

    try:
        with Runner(
            db_url, tmp_path / "migrations", lock_timeout=0.2, backoff=release, log=said.append
        ) as runner:
            runner.migrate(names[2])
            loads.clear()
            with blocker.cursor() as cursor:  # holds a lock the next ALTER TABLE waits for
                cursor.execute(f"SELECT count(*) FROM {histories.TABLE}")
            assert runner.migrate() == names[3:]
    finally:
        blocker.close()
    assert [line for line in said if "retrying" in line] == [
        line for line in said if line.startswith(f"{names[3]}: lock wait timed out")
    ]
    assert len([line for line in said if "retrying" in line]) == 1
    assert loads == Counter(names)
