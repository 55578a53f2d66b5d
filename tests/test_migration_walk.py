"""Walking the migrations up and down with data present, and their lock-safe behaviour.

Every step up and every step down must leave exactly the stored catalog of
where it arrives (``migrations/schema``), and no row may change on the way,
through chatdb's runner and through plain ``pw_migrate`` alike. Then the
interruptions a lock-safe migration must survive: an INVALID index left by a
concurrent build, a foreign key swapped but not yet validated, and a long
transaction holding a lock the migration needs.
"""

from __future__ import annotations

import threading
import time

import peewee as pw
import psycopg2
import pytest

from chatdb import catalog
from chatdb.catalog import snapshots
from chatdb.db.connect import make_database
from chatdb.errors import ChatdbError, LockNotObtained
from chatdb.migrate import history, loader
from chatdb.migrate.executor import Runner
from chatdb.testing import dataset
from tests.conftest import MIGRATIONS, run_cli
from tests.ops_support import no_wait

NAMES = loader.names(MIGRATIONS)
TABLES = (*dataset.COPY_ORDER, "alembic_version")


def fingerprint(db: pw.Database) -> dict[str, tuple[int, str]]:
    """Row count and a digest of every row's content, per table."""
    out = {}
    for table in TABLES:
        out[table] = db.execute_sql(
            f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
            f"FROM {table} t"
        ).fetchone()
    return out


def assert_at(db: pw.Database, name: str) -> None:
    live = catalog.read_catalog(db).without(history.TABLE)
    assert catalog.diff(snapshots.expected(MIGRATIONS, name), live) == [], name
    assert [a.name for a in history.applied(db)] == NAMES[: NAMES.index(name) + 1]


@pytest.fixture
def legacy_with_rows(db_url) -> str:
    """A database at the baseline holding rows in every table."""
    dataset.build(db_url, messages=300, seed=3)
    return db_url


def test_dataset_fills_every_table(legacy_with_rows):
    db = make_database(legacy_with_rows)
    with db.connection_context():
        counts = {table: count for table, (count, _) in fingerprint(db).items()}
    assert counts["messages"] == 300
    assert all(counts.values()), counts


def test_runner_walks_up_and_down_one_step_at_a_time(legacy_with_rows):
    with Runner(legacy_with_rows, MIGRATIONS) as runner:
        db = runner.database
        rows = fingerprint(db)
        assert_at(db, NAMES[0])
        for name in NAMES[1:]:
            assert runner.migrate(name) == [name]
            assert_at(db, name)
            assert fingerprint(db) == rows, name
        for index in range(len(NAMES) - 1, 0, -1):
            assert runner.rollback(1) == [NAMES[index]]
            assert_at(db, NAMES[index - 1])
            assert fingerprint(db) == rows, NAMES[index]


def test_plain_pw_migrate_walks_up_and_down_one_step_at_a_time(legacy_with_rows):
    """pw_migrate runs each migration in a transaction: the same catalogs, the same rows."""
    url = legacy_with_rows
    db = make_database(url)
    with db.connection_context():
        rows = fingerprint(db)
    for name in NAMES[1:]:
        result = run_cli("migrate", "--name", name, "--database", url, program="pw_migrate")
        assert result.returncode == 0, result.stderr
        with db.connection_context():
            assert_at(db, name)
            assert fingerprint(db) == rows, name
    for index in range(len(NAMES) - 1, 0, -1):
        result = run_cli("rollback", "--count", "1", "--database", url, program="pw_migrate")
        assert result.returncode == 0, result.stderr
        with db.connection_context():
            assert_at(db, NAMES[index - 1])
            assert fingerprint(db) == rows, NAMES[index]


INDEXES = "003_foreign_key_and_listing_indexes"
CASCADES = "004_cascade_deletes"


@pytest.mark.parametrize("via", ["runner", "pw_migrate"])
def test_invalid_index_left_by_an_interrupted_concurrent_build_is_rebuilt(legacy_with_rows, via):
    """Concurrently by chatdb's runner, in its transaction by plain pw_migrate."""
    url = legacy_with_rows
    with Runner(url, MIGRATIONS) as runner:
        db = runner.database
        runner.migrate("002_database_defaults")
        # A concurrent build that fails half-way leaves its index behind, INVALID: here a
        # UNIQUE build under the migration's index name, failing on a message with two calls.
        message = db.execute_sql("SELECT message_id FROM messages LIMIT 1").fetchone()[0]
        for call in ("call_a", "call_b"):
            db.execute_sql(
                "INSERT INTO tool_calls VALUES (%s, 'web-search', '{}', NULL, %s)", (call, message)
            )
        with pytest.raises(pw.IntegrityError):
            db.execute_sql(
                "CREATE UNIQUE INDEX CONCURRENTLY ix_tool_calls_message_id ON tool_calls "
                "(message_id)"
            )
        leftover = catalog.read_catalog(db).indexes["ix_tool_calls_message_id"]
        assert not leftover.valid
        if via == "runner":
            assert runner.migrate(INDEXES) == [INDEXES]
        else:
            result = run_cli("migrate", "--name", INDEXES, "--database", url, program="pw_migrate")
            assert result.returncode == 0, result.stderr
        assert_at(db, INDEXES)


def test_rerun_completes_a_foreign_key_swapped_but_not_validated(legacy_with_rows):
    """As if interrupted between a swap and its validation: the re-run validates it."""
    with Runner(legacy_with_rows, MIGRATIONS) as runner:
        db = runner.database
        runner.migrate(INDEXES)
        db.execute_sql(
            "ALTER TABLE messages DROP CONSTRAINT messages_thread_id_fkey, "
            "ADD CONSTRAINT messages_thread_id_fkey FOREIGN KEY (thread_id) "
            "REFERENCES threads (thread_id) ON DELETE CASCADE NOT VALID"
        )
        assert runner.migrate(CASCADES) == [CASCADES]
        assert_at(db, CASCADES)


@pytest.fixture
def blocker(legacy_with_rows):
    """Another session's open transaction that has read ``threads`` (so holds a lock on it)."""
    conn = psycopg2.connect(legacy_with_rows)
    with conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM threads")
    yield conn
    conn.close()


def test_migration_behind_a_long_transaction_gives_up_and_says_on_what(legacy_with_rows, blocker):
    with Runner(
        legacy_with_rows, MIGRATIONS, lock_timeout=0.2, attempts=2, backoff=no_wait
    ) as runner:
        with pytest.raises(LockNotObtained) as raised:
            runner.migrate()
        message = str(raised.value)
        assert "002_database_defaults" in message
        assert "gave up after 2 attempts of 0.2s" in message
        # What it waited for: the blocking session, its statement and the table it holds.
        assert f"pid {blocker.get_backend_pid()} (idle in transaction" in message
        assert "SELECT count(*) FROM threads" in message
        assert "threads" in message.split("SELECT count(*) FROM threads", 1)[1]
        assert_at(runner.database, NAMES[0])


def test_migration_retries_after_a_lock_timeout_and_then_completes(legacy_with_rows, blocker):
    said: list[str] = []

    def log(line: str) -> None:
        said.append(line)
        if "retrying" in line:
            blocker.rollback()

    with Runner(legacy_with_rows, MIGRATIONS, lock_timeout=0.2, log=log, backoff=no_wait) as runner:
        assert runner.migrate() == NAMES[1:]
        assert_at(runner.database, NAMES[-1])
    retries = [line for line in said if "retrying" in line]
    assert len(retries) == 1
    assert f"pid {blocker.get_backend_pid()}" in retries[0]


def test_non_atomic_migration_interrupted_by_a_lock_timeout_completes_on_rerun(legacy_with_rows):
    """Steps done before the timeout stay; running the migration again finishes the rest."""
    with Runner(legacy_with_rows, MIGRATIONS, lock_timeout=0.2, attempts=1) as runner:
        db = runner.database
        runner.migrate(INDEXES)
        blocker = psycopg2.connect(legacy_with_rows)
        with blocker.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM token_consumption")
        try:
            with pytest.raises(ChatdbError, match=f"{CASCADES}.*pid {blocker.get_backend_pid()}"):
                runner.migrate(CASCADES)
        finally:
            blocker.close()
        halfway = catalog.read_catalog(db).constraints
        assert halfway["messages"]["messages_thread_id_fkey"].endswith("ON DELETE CASCADE")
        assert not halfway["token_consumption"]["token_consumption_message_id_fkey"].endswith(
            "ON DELETE CASCADE"
        )
        assert runner.migrate(CASCADES) == [CASCADES]
        assert_at(db, CASCADES)


def test_foreign_key_swap_does_not_deadlock_with_a_writer(legacy_with_rows):
    """A writer holding a message lock and then writing a tool call is never deadlocked.

    Swapping ``tool_calls``' foreign key locks ``tool_calls``, then ``messages``: taken in
    one waiting statement, the writer below (holding ``messages``, wanting ``tool_calls``)
    and the migration would wait for each other until PostgreSQL aborted one of them.
    """
    with Runner(legacy_with_rows, MIGRATIONS) as runner:
        db = runner.database
        runner.migrate(INDEXES)
        db.execute_sql(
            "ALTER TABLE messages DROP CONSTRAINT messages_thread_id_fkey, "
            "ADD CONSTRAINT messages_thread_id_fkey FOREIGN KEY (thread_id) "
            "REFERENCES threads (thread_id) ON DELETE CASCADE"
        )
        writer = psycopg2.connect(legacy_with_rows)
        with writer.cursor() as cursor:
            cursor.execute("SELECT thread_id FROM threads LIMIT 1")
            cursor.execute(
                "INSERT INTO messages (thread_id, content, entity, is_complete) "
                "VALUES (%s, '{}', 'TOOL', true) RETURNING message_id",
                cursor.fetchone(),
            )
            message = cursor.fetchone()[0]
        done: list[object] = []
        migrating = threading.Thread(target=lambda: done.append(runner.migrate(CASCADES)))
        migrating.start()
        try:
            # The migration has tried its NOWAIT lock on messages at least once, and failed.
            _wait_until_tried_nowait(legacy_with_rows, writer.get_backend_pid())
            with writer.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO tool_calls VALUES ('call_w', 'web-search', '{}', NULL, %s)",
                    (message,),
                )
            writer.commit()
        finally:
            migrating.join(timeout=60)
            writer.close()
        assert done == [[CASCADES]]
        assert_at(db, CASCADES)


def _wait_until_tried_nowait(url: str, writer_pid: int) -> None:
    """Poll until a session other than the writer has tried its ``LOCK ... NOWAIT``.

    A failed try is rolled back at once, so the session's last statement is
    the ``LOCK ... NOWAIT`` only for an instant, then ``ROLLBACK``.
    """
    probe = psycopg2.connect(url)
    probe.autocommit = True
    deadline = time.monotonic() + 60
    try:
        with probe.cursor() as cursor:
            while True:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid NOT IN (pg_backend_pid(), %s) "
                    "AND (query LIKE '%%NOWAIT%%' OR query = 'ROLLBACK')",
                    (writer_pid,),
                )
                if cursor.fetchone()[0]:
                    return
                assert time.monotonic() < deadline, "the migration never tried its NOWAIT lock"
                time.sleep(0.05)
    finally:
        probe.close()
