"""Every guard holds the same whether ``chatdb`` or plain ``pw_migrate`` runs the migrations.

Both front ends hand their plan to one executor, so each test here runs
once per front end with the same files and the same expectations; only the
way to confirm data loss differs (``--yes`` against
``CHATDB_ALLOW_DATA_LOSS=1``), and each message names only options the
running tool has.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from pathlib import Path

import psycopg2
import pytest

from tests.conftest import MIGRATIONS, run_cli
from tests.ops_support import (
    KILL_THE_LOCK,
    applied_names,
    execute,
    migrations_with,
    one_line_error,
    sql_migration,
    state,
)

RUNNERS = ["chatdb", "pw_migrate"]
ALLOW = "CHATDB_ALLOW_DATA_LOSS"
# How long the writer storm lasts for each front end (and at least three rounds).
STORM_SECONDS = 30


def _project(tmp_path: Path, extra: dict[str, str], snapshot_url: str | None = None) -> Path:
    """chatdb's migrations plus ``extra``, with the conf.py that makes pw_migrate chatdb's."""
    directory = migrations_with(tmp_path / "migrations", extra, snapshot_url)
    shutil.copy(MIGRATIONS / "conf.py", directory / "conf.py")
    return directory


def _run(runner: str, command: str, directory: Path, url: str, *args: str, yes: bool = False):
    """``migrate``/``rollback`` through one front end; ``yes`` confirms data loss its way."""
    options = ["--directory", str(directory), "--database", url, *args]
    if runner == "chatdb":
        return run_cli(command, *options, *(["--yes"] if yes else []))
    return run_cli(command, *options, program="pw_migrate", env={ALLOW: "1"} if yes else None)


def _up(runner: str, directory: Path, url: str, name: str | None = None, **kw):
    if name is None:
        return _run(runner, "migrate", directory, url, **kw)
    flag = "--to" if runner == "chatdb" else "--name"
    return _run(runner, "migrate", directory, url, flag, name, **kw)


def _down(runner: str, directory: Path, url: str, count: int = 1, **kw):
    return _run(runner, "rollback", directory, url, "--count", str(count), **kw)


def _refused_for_data(runner: str, line: str) -> None:
    """A data-loss refusal, in the words of the tool that ran."""
    if runner == "chatdb":
        assert line.endswith("take a backup and pass --yes (or set CHATDB_ALLOW_DATA_LOSS=1) "
                             "if that is what you want"), line  # fmt: skip
    else:
        assert line.endswith("take a backup and set CHATDB_ALLOW_DATA_LOSS=1 if that is what "
                             "you want"), line  # fmt: skip
        assert "--yes" not in line


def _has_table(url: str, table: str) -> bool:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
            return cur.fetchone()[0]
    finally:
        conn.close()


@pytest.fixture
def at_head(chatdb_url) -> str:
    """A database at chatdb's head (a copy of the plugin's template)."""
    return chatdb_url


DROP_NOTE = """
from chatdb import operations


def migrate(migrator, database, *, fake=False):
    operations.guard_data_loss(migrator, columns=[("threads", "note")])
    migrator.sql("ALTER TABLE threads DROP COLUMN note")


def rollback(migrator, database, *, fake=False):
    migrator.sql("ALTER TABLE threads ADD COLUMN note text")
"""
ADD_NOTE = sql_migration(
    "ALTER TABLE threads ADD COLUMN note text", "ALTER TABLE threads DROP COLUMN note"
)
THREAD = (
    "INSERT INTO threads (thread_id, title, creation_date, update_date, user_id, note) VALUES "
    "(gen_random_uuid(), 't', now(), now(), gen_random_uuid(), 'keep me')"
)


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_guarded_drop_is_refused_until_confirmed(runner, at_head, tmp_path):
    directory = _project(tmp_path, {"900_add_note": ADD_NOTE, "901_drop_note": DROP_NOTE})
    assert _up(runner, directory, at_head, "900_add_note").returncode == 0
    execute(at_head, THREAD)
    before = state(at_head)
    _refused_for_data(runner, one_line_error(_up(runner, directory, at_head), at_head))
    assert state(at_head) == before
    result = _up(runner, directory, at_head, yes=True)
    assert result.returncode == 0, result.stderr
    assert applied_names(at_head)[-1] == "901_drop_note"


def test_sql_yes_previews_a_guarded_release(at_head, tmp_path):
    directory = _project(tmp_path, {"900_add_note": ADD_NOTE, "901_drop_note": DROP_NOTE})
    assert _up("chatdb", directory, at_head, "900_add_note").returncode == 0
    execute(at_head, THREAD)
    before = state(at_head)
    args = ("migrate", "--sql", "--directory", str(directory), "--database", at_head)
    _refused_for_data("chatdb", one_line_error(run_cli(*args), at_head))
    printed = run_cli(*args, "--yes")
    assert printed.returncode == 0, printed.stderr
    assert "ALTER TABLE threads DROP COLUMN note;" in printed.stdout
    assert "-- applying 901_drop_note" in printed.stdout
    assert state(at_head) == before, "printing wrote nothing"


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_rollback_dropping_data_is_refused_until_confirmed(
    runner, at_head, tmp_path, new_database
):
    directory = _project(tmp_path, {"900_add_note": ADD_NOTE}, new_database())
    assert _up(runner, directory, at_head).returncode == 0
    execute(at_head, THREAD)
    before = state(at_head)
    line = one_line_error(_down(runner, directory, at_head), at_head)
    assert "900_add_note would drop column threads.note, which hold data" in line
    _refused_for_data(runner, line)
    assert state(at_head) == before
    result = _down(runner, directory, at_head, yes=True)
    assert result.returncode == 0, result.stderr
    assert "900_add_note" not in applied_names(at_head)


def test_the_environment_confirms_for_chatdb_too(at_head, tmp_path, new_database):
    directory = _project(tmp_path, {"900_add_note": ADD_NOTE}, new_database())
    assert _up("chatdb", directory, at_head).returncode == 0
    execute(at_head, THREAD)
    result = run_cli("rollback", "--directory", str(directory), "--database", at_head,
                     env={ALLOW: "1"})  # fmt: skip
    assert result.returncode == 0, result.stderr


ENUM_LABEL_THEN_USE = sql_migration(
    "ALTER TYPE mood ADD VALUE IF NOT EXISTS 'happy'; "
    "CREATE TABLE moods (m mood NOT NULL DEFAULT 'happy')",
    "DROP TABLE IF EXISTS moods",
    atomic=False,
)


@pytest.mark.parametrize("runner", RUNNERS)
def test_an_enum_label_added_then_used_applies(runner, at_head, tmp_path):
    directory = _project(
        tmp_path,
        {
            "900_mood": sql_migration("CREATE TYPE mood AS ENUM ('calm')", "DROP TYPE mood"),
            "901_happy": sql_migration(
                "ALTER TYPE mood ADD VALUE IF NOT EXISTS 'happy'",
                "SELECT 1",
                atomic=False,
            ),
            "902_use_it": sql_migration(
                "CREATE TABLE moods (m mood NOT NULL DEFAULT 'happy')", "DROP TABLE moods"
            ),
        },
    )
    # 901 and 902 in one plan: the label is committed before 902 uses it.
    result = _up(runner, directory, at_head)
    assert result.returncode == 0, result.stderr
    assert _has_table(at_head, "moods")


@pytest.mark.parametrize("runner", RUNNERS)
def test_an_enum_label_added_and_used_in_one_non_atomic_migration(runner, at_head, tmp_path):
    directory = _project(
        tmp_path,
        {
            "900_mood": sql_migration("CREATE TYPE mood AS ENUM ('calm')", "DROP TYPE mood"),
            "901_happy_and_used": (
                "atomic = False\n\n\n"
                "def migrate(migrator, database, *, fake=False):\n"
                "    migrator.sql(\"ALTER TYPE mood ADD VALUE IF NOT EXISTS 'happy'\")\n"
                "    migrator.sql(\"CREATE TABLE moods (m mood NOT NULL DEFAULT 'happy')\")\n\n\n"
                "def rollback(migrator, database, *, fake=False):\n"
                "    migrator.sql('DROP TABLE IF EXISTS moods')\n"
            ),
        },
    )
    result = _up(runner, directory, at_head)
    assert result.returncode == 0, result.stderr
    assert _has_table(at_head, "moods")
    assert applied_names(at_head)[-1] == "901_happy_and_used"


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_lost_lock_stops_before_recording(runner, at_head, tmp_path):
    steps = (
        "atomic = False\n\n\n"
        "def migrate(migrator, database, *, fake=False):\n"
        f"    migrator.sql({KILL_THE_LOCK!r})\n"
        "    migrator.sql('CREATE TABLE after_the_kill (id int)')\n\n\n"
        "def rollback(migrator, database, *, fake=False):\n"
        "    migrator.sql('DROP TABLE IF EXISTS after_the_kill')\n"
    )
    directory = _project(tmp_path, {"900_kill_the_lock": steps})
    line = one_line_error(_up(runner, directory, at_head), at_head)
    assert "lost the migration lock (its connection ended" in line
    assert not _has_table(at_head, "after_the_kill")
    assert "900_kill_the_lock" not in applied_names(at_head)


@pytest.mark.parametrize("runner", RUNNERS)
def test_an_imposed_statement_timeout_does_not_fail_a_step(runner, at_head, tmp_path):
    database = at_head.rsplit("/", 1)[1].split("?")[0]
    execute(at_head, f"ALTER DATABASE {database} SET statement_timeout = '100ms'")
    directory = _project(
        tmp_path,
        {"900_slow": sql_migration("SELECT pg_sleep(0.5); CREATE TABLE slow (id int)",
                                   "DROP TABLE slow")},
    )  # fmt: skip
    result = _up(runner, directory, at_head)
    assert result.returncode == 0, result.stderr
    assert _has_table(at_head, "slow")


@pytest.mark.parametrize("runner", RUNNERS)
def test_every_file_is_loaded_before_any_runs(runner, at_head, tmp_path):
    directory = _project(
        tmp_path,
        {
            "900_fine": sql_migration("CREATE TABLE fine (id int)", "DROP TABLE fine"),
            "901_broken": "def migrate(migrator, database, *, fake=False)\n    pass\n",
        },
    )
    before = state(at_head)
    line = one_line_error(_up(runner, directory, at_head), at_head)
    assert "901_broken" in line
    assert state(at_head) == before


@pytest.mark.parametrize("runner", RUNNERS)
def test_an_edited_applied_file_is_refused(runner, at_head, tmp_path):
    directory = _project(
        tmp_path, {"900_fine": sql_migration("CREATE TABLE fine (id int)", "DROP TABLE fine")}
    )
    assert _up(runner, directory, at_head).returncode == 0
    (directory / "900_fine.py").write_text(
        sql_migration("CREATE TABLE fine (id bigint)", "DROP TABLE fine")
    )
    (directory / "901_next.py").write_text(
        sql_migration("CREATE TABLE next (id int)", "DROP TABLE next")
    )
    before = state(at_head)
    line = one_line_error(_up(runner, directory, at_head), at_head)
    assert "900_fine" in line and "changed" in line
    if runner == "pw_migrate":
        assert "`chatdb migrate --accept-changed`" in line
    else:
        assert line.endswith("or pass --accept-changed to accept them as they are now")
    assert state(at_head) == before


# -- the writer storm ---------------------------------------------------------------


def _writer(db, thread_id: uuid.UUID, stop: threading.Event, errors: list[str]) -> None:
    """Appends a message through the data API every 10 ms until told to stop; records failures."""
    batch = [{"thread_id": thread_id, "entity": "USER", "content": {"content": "storm"}}]
    while not stop.wait(0.01):
        try:
            db.add_messages(batch)
        except Exception as exc:  # every failure counts, whatever its type
            errors.append(f"{type(exc).__name__}: {exc}")


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_writer_storm_never_deadlocks_with_a_migration(runner, at_head):
    """4 writers on the data API while 004 (locks on messages and threads) goes down and up."""
    import chatdb

    db = chatdb.connect(at_head, max_connections=4)
    threads = [db.create_thread(uuid.uuid4()).thread_id for _ in range(4)]
    stop, errors = threading.Event(), []
    writers = [threading.Thread(target=_writer, args=(db, t, stop, errors)) for t in threads]
    for writer in writers:
        writer.start()
    rounds, failures = 0, []
    deadline = time.monotonic() + STORM_SECONDS
    try:
        while time.monotonic() < deadline or rounds < 3:
            for result in (
                _down(runner, MIGRATIONS, at_head, 2),
                _up(runner, MIGRATIONS, at_head),
            ):
                if result.returncode != 0:
                    failures.append(result.stderr.strip().splitlines()[-1])
            rounds += 1
    finally:
        stop.set()
        for writer in writers:
            writer.join()
        db.close_all()
    assert failures == [] and errors == [], (failures[:3], errors[:3])
    assert applied_names(at_head)[-1] == "005_scope_indexes"
