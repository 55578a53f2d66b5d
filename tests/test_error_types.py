"""Each refusal a caller may tell apart has its own ChatdbError subclass; messages unchanged."""

from __future__ import annotations

import click
import psycopg2
import pytest
from click.testing import CliRunner

from chatdb.cli.common import friendly
from chatdb.db.connect import make_database, open_database
from chatdb.db.urls import with_database
from chatdb.errors import (
    ChatdbError,
    ConnectionFailed,
    DataLossRefused,
    DriftDetected,
    LockNotObtained,
    TamperDetected,
    TargetReadOnly,
)
from chatdb.legacy import handover
from chatdb.migrate.executor import Runner
from chatdb.testing import histories
from tests.conftest import MIGRATIONS, load_legacy
from tests.ops_support import execute, state


def test_every_refusal_type_is_a_chatdb_error():
    for kind in (
        ConnectionFailed,
        TargetReadOnly,
        LockNotObtained,
        DriftDetected,
        TamperDetected,
        DataLossRefused,
    ):
        assert issubclass(kind, ChatdbError)


def test_connection_failed(server_url):
    missing = with_database(server_url, "chatdb_no_such_database")
    with pytest.raises(ConnectionFailed, match=r"cannot connect to .*does not exist; create it"):
        open_database(missing)
    with pytest.raises(ConnectionFailed):
        Runner(missing, MIGRATIONS)


def test_target_read_only(db_url):
    name = make_database(db_url).database
    execute(db_url, f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    with Runner(db_url, MIGRATIONS) as runner:
        with pytest.raises(TargetReadOnly, match=r"read-only .*nothing was tried"):
            runner.migrate()
        with pytest.raises(TargetReadOnly):
            runner.rollback()


def test_tamper_detected(db_url, tmp_path):
    directory = tmp_path / "migrations"
    names = histories.write(directory, 3)
    with Runner(db_url, directory) as runner:
        runner.migrate()
        changed = directory / f"{names[1]}.py"
        changed.write_text(changed.read_text() + "\n# edited after it was applied\n")
        with pytest.raises(TamperDetected, match=f"refusing to migrate: {names[1]}: file changed"):
            runner.migrate()
        changed.unlink()
        with pytest.raises(TamperDetected, match=f"refusing to roll back: .*{names[1]} have no"):
            runner.rollback()


def test_data_loss_refused(db_url):
    with Runner(db_url, MIGRATIONS) as runner:
        runner.migrate("001_baseline")
        with pytest.raises(DataLossRefused, match="refusing to roll back: 001_baseline is the"):
            runner.rollback()


def test_drift_detected(db_url):
    load_legacy(db_url)
    execute(db_url, "ALTER TABLE threads ADD COLUMN hotfix int")
    before = state(db_url)
    with Runner(db_url, MIGRATIONS) as runner, pytest.raises(DriftDetected, match="hotfix"):
        handover.handover(runner)
    assert state(db_url) == before


def test_lock_not_obtained_by_the_handover(db_url):
    load_legacy(db_url)
    holder = psycopg2.connect(db_url)
    try:
        with holder.cursor() as cursor:
            cursor.execute("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE")
        runner = Runner(db_url, MIGRATIONS, lock_timeout=0.2)
        with runner, pytest.raises(LockNotObtained, match="retry once the session holding"):
            handover.handover(runner)
    finally:
        holder.close()


def test_an_unexpected_error_without_a_message_is_still_one_line():
    @click.command()
    @friendly
    def blank() -> None:
        raise RuntimeError("  \n ")

    result = CliRunner().invoke(blank)
    assert result.exit_code == 1
    assert result.output == "error: RuntimeError (run with -v for details)\n"
