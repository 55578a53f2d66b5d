"""Online type changes and backfills: generated, applied, rolled back, killed and resumed.

A rewriting type change (integer -> bigint, varchar -> jsonb) is generated
by ``chatdb create`` as expand / backfill / contract; it must build the
models' schema, roll back to the catalog before it (the swapped column sits
last, which the catalog comparison accepts), apply again, keep every value
both ways, and do so under ``chatdb migrate`` and plain ``pw_migrate``
alike. A backfill killed mid-way continues where it stopped when run again.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import psycopg2
import pytest

from chatdb import catalog
from chatdb.db.connect import open_database
from chatdb.errors import ChatdbError
from chatdb.migrate.create import create
from chatdb.migrate.executor import Runner
from chatdb.migrate.lint import lint
from chatdb.migrate.online import BATCH_SECONDS, SMALLEST_BATCH, Backfill, next_batch_size
from tests.conftest import MIGRATIONS, NEXT, run_cli
from tests.ops_support import chatdb_command, clean_env, migrations_with, one_line_error
from tests.test_autogenerate import (  # noqa: F401 (fixtures)
    MODELS,
    edit,
    execute,
    project,
    rows_db,
    state,
    template,
)
from tests.test_runners import _down, _up

BIGINT_COUNT = ("    count = pw.IntegerField()\n", "    count = pw.BigIntegerField()\n")
RUNNERS = ["chatdb", "pw_migrate"]


def jsonb_arguments(source: str) -> str:
    """tool_calls.arguments (character varying, not the table's last column) as jsonb."""
    source = edit(source, "import DateTimeTZField,", "import BinaryJSONField, DateTimeTZField,")
    return edit(
        source,
        "    arguments = JsonTextField()\n",
        "    arguments = BinaryJSONField(index=False)\n",
    )


def _values(url: str, query: str) -> list[tuple]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(query)
            return cur.fetchall()
    finally:
        conn.close()


def _counts(url: str) -> list[tuple]:
    return _values(url, "SELECT id::text, count::bigint FROM token_consumption ORDER BY id")


def _run(runner: str, command: str, directory: Path, url: str):
    args = ("--directory", str(directory), "--database", url)
    if runner == "chatdb":
        return run_cli(command, *args)
    return run_cli(command, *args, program="pw_migrate", cwd=directory.parent)


def test_generated_type_change_is_online_and_rolls_back_exactly(server_url, rows_db, project):  # noqa: F811
    directory, models = project
    made = create("change", server_url=server_url, directory=directory, models=models(
        edit(MODELS, *BIGINT_COUNT)))  # fmt: skip
    assert made.path is not None
    source = made.path.read_text()
    assert "atomic = False" in source
    assert (
        'operations.change_column_type(migrator, "token_consumption", "count", "bigint", '
        "not_null=True)" in source
    )
    assert (
        'operations.change_column_type(migrator, "token_consumption", "count", "integer", '
        "not_null=True)" in source
    )
    assert lint(made.path) == []
    before, values = state(rows_db)[0], _counts(rows_db)
    with Runner(rows_db, directory) as runner:
        assert runner.migrate() == [made.name]
    after = state(rows_db)[0]
    columns = {c.name: c for c in after.tables["token_consumption"]}
    assert columns["count"].type == "bigint" and columns["count"].not_null
    assert [c.name for c in after.tables["token_consumption"]][-1] == "count"  # swapped in last
    assert "chatdb_new_count" not in columns and not after.triggers.get("token_consumption")
    assert _counts(rows_db) == values
    check = run_cli("check", "--directory", str(directory), "--database", rows_db)
    assert check.returncode == 0, check.stdout + check.stderr
    with Runner(rows_db, directory) as runner:
        runner.rollback()
    assert catalog.diff(before, state(rows_db)[0]) == []
    assert _counts(rows_db) == values
    with Runner(rows_db, directory) as runner:
        assert runner.migrate() == [made.name]  # no drift after the rollback
    assert catalog.diff(after, state(rows_db)[0]) == []
    assert _counts(rows_db) == values


@pytest.mark.parametrize("runner", RUNNERS)
def test_varchar_to_jsonb_under_both_runners(server_url, rows_db, project, runner):  # noqa: F811
    directory, models = project
    package = models(jsonb_arguments(MODELS))
    made = create("change", server_url=server_url, directory=directory, models=package)
    assert made.path is not None
    query = "SELECT tool_call_id, arguments::jsonb FROM tool_calls ORDER BY 1"
    before, values = state(rows_db)[0], _values(rows_db, query)
    assert values
    result = _run(runner, "migrate", directory, rows_db)
    assert result.returncode == 0, result.stderr
    types = {c.name: c.type for c in state(rows_db)[0].tables["tool_calls"]}
    assert types["arguments"] == "jsonb"
    assert _values(rows_db, query) == values
    execute(
        rows_db,
        "INSERT INTO tool_calls (tool_call_id, name, arguments, message_id) "
        "SELECT 'new-call', 'n', '{\"a\": 1}', message_id FROM messages LIMIT 1",
    )
    result = _run(runner, "rollback", directory, rows_db)
    assert result.returncode == 0, result.stderr
    assert catalog.diff(before, state(rows_db)[0]) == []
    assert dict(_values(rows_db, query)) == {**dict(values), "new-call": {"a": 1}}
    result = _run(runner, "migrate", directory, rows_db)
    assert result.returncode == 0, result.stderr
    assert {c.name: c.type for c in state(rows_db)[0].tables["tool_calls"]}["arguments"] == "jsonb"


def test_type_change_of_an_indexed_column_is_refused_with_the_plan(server_url, project):  # noqa: F811
    directory, models = project
    package = models(
        edit(
            MODELS,
            "    vlab_id = pw.UUIDField(null=True)\n",
            "    vlab_id = pw.TextField(null=True)\n",
        )
    )
    with pytest.raises(ChatdbError, match=r"threads\.vlab_id.*index ix_threads_vlab_id would go"):
        create("change", server_url=server_url, directory=directory, models=package)
    assert not list(directory.glob(f"{NEXT}_*"))


# A hand-written data move and type change, in batches small and slow enough to be killed.
WORDS = "length(content)"
KILLABLE = f"""import peewee as pw
from peewee_migrate import Migrator

from chatdb import operations

atomic = False


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    operations.add_column(migrator, "messages", "words", "integer")
    operations.backfill(migrator, "messages", "words", "{WORDS}", batch_size=4, pause=0.1)
    operations.change_column_type(
        migrator, "token_consumption", "count", "bigint", not_null=True, batch_size=20, pause=0.1
    )


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    operations.change_column_type(migrator, "token_consumption", "count", "integer", not_null=True)
    operations.drop_column(migrator, "messages", "words")
"""


def _kill_when(url: str, command: list[str], log: Path, query: str) -> None:
    """Start ``command``, SIGKILL it once ``query`` is true (a backfill part way through)."""
    poll = psycopg2.connect(url)
    poll.autocommit = True
    with log.open("w") as err:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, env=clean_env())
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            with poll.cursor() as cur:
                try:
                    cur.execute(query)
                    if cur.fetchone()[0]:
                        process.send_signal(signal.SIGKILL)
                        break
                except (psycopg2.errors.UndefinedColumn, psycopg2.errors.UndefinedTable):
                    pass
            time.sleep(0.01)
        assert process.wait(timeout=30) == -signal.SIGKILL, log.read_text()
    finally:
        poll.close()
        if process.poll() is None:
            process.kill()


def _backfilled(stderr: str, name: str) -> int:
    """The rows a run's backfill ``name`` says it filled (its last progress line)."""
    lines = [line for line in stderr.splitlines() if f"backfill {name}: " in line]
    assert lines, stderr
    return int(lines[-1].split(": ")[1].split()[0].replace(",", ""))


def test_backfills_resume_after_the_migrating_process_is_killed(rows_db, new_database, tmp_path):  # noqa: F811
    directory = migrations_with(tmp_path / "migrations", {"006_killable": KILLABLE}, new_database())
    args = ("migrate", "--directory", str(directory), "--database", rows_db)
    counts = _counts(rows_db)
    total = _values(rows_db, "SELECT count(*) FROM messages")[0][0]
    _kill_when(rows_db, chatdb_command(*args), tmp_path / "first.log",
               "SELECT count(words) BETWEEN 8 AND count(*) - 8 FROM messages")  # fmt: skip
    _kill_when(rows_db, chatdb_command(*args), tmp_path / "second.log",
               "SELECT count(chatdb_new_count) >= 20 FROM token_consumption")  # fmt: skip
    # Written between the runs: the sync trigger fills the new column.
    execute(rows_db, "UPDATE token_consumption SET count = count + 1 WHERE id = "
                     "(SELECT id FROM token_consumption ORDER BY id LIMIT 1)")  # fmt: skip
    counts = [(counts[0][0], counts[0][1] + 1), *counts[1:]]
    second = (tmp_path / "second.log").read_text()
    first = (tmp_path / "first.log").read_text()
    assert 0 < _backfilled(second, "messages.words") <= total - 8, first  # went on from it
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    left = _backfilled(result.stderr, "token_consumption.count::bigint")
    assert 0 <= left <= len(counts) - 20  # only what the second run had not filled
    wrong = f"SELECT count(*) FROM messages WHERE words IS DISTINCT FROM {WORDS}"
    assert _values(rows_db, wrong) == [(0,)]
    assert _counts(rows_db) == counts
    types = {c.name: c.type for c in state(rows_db)[0].tables["token_consumption"]}
    assert types["count"] == "bigint" and "chatdb_new_count" not in types
    check = run_cli("check", "--directory", str(directory), "--database", rows_db)
    assert check.returncode == 0, check.stdout + check.stderr


def _definitions(url: str) -> tuple[str, str]:
    """The search function and trigger as the catalog gives them back (what a rollback restores)."""
    return _values(
        url,
        "SELECT pg_get_functiondef('update_messages_search_vector()'::regprocedure), "
        "(SELECT pg_get_triggerdef(oid) FROM pg_trigger "
        "WHERE tgname = 'messages_search_vector_trigger')",
    )[0]


NEW_SEARCH = """CREATE FUNCTION update_messages_search_vector() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    NEW.search_vector := to_tsvector('simple', coalesce(NEW.content::jsonb ->> 'content', ''));
    RETURN NEW;
END
$fn$"""
TOUCH = """CREATE FUNCTION touch_thread() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    NEW.update_date := now();
    RETURN NEW;
END
$fn$"""
ON_CONTENT = (
    "CREATE TRIGGER messages_search_vector_trigger BEFORE INSERT OR UPDATE OF content, entity "
    "ON messages FOR EACH ROW EXECUTE FUNCTION update_messages_search_vector()"
)
ON_THREADS = (
    "CREATE TRIGGER threads_touch BEFORE UPDATE ON threads "
    "FOR EACH ROW EXECUTE FUNCTION touch_thread()"
)


def _routines_migration(function: str, trigger: str) -> str:
    """Replace the search function, narrow its trigger, add a function and a trigger elsewhere."""
    return f"""import peewee as pw
from peewee_migrate import Migrator

from chatdb import operations

FUNCTION = {function!r}
TRIGGER = {trigger!r}
NEW_SEARCH = {NEW_SEARCH!r}
TOUCH = {TOUCH!r}
ON_CONTENT = {ON_CONTENT!r}
ON_THREADS = {ON_THREADS!r}


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    operations.create_function(migrator, NEW_SEARCH, previous=FUNCTION)
    operations.drop_trigger(migrator, TRIGGER)
    operations.create_trigger(migrator, ON_CONTENT)
    operations.create_function(migrator, TOUCH)
    operations.create_trigger(migrator, ON_THREADS)


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    operations.drop_trigger(migrator, ON_THREADS)
    operations.drop_function(migrator, TOUCH)
    operations.drop_trigger(migrator, ON_CONTENT)
    operations.create_trigger(migrator, TRIGGER)
    operations.create_function(migrator, FUNCTION, previous=NEW_SEARCH)
"""


@pytest.mark.parametrize("runner", RUNNERS)
def test_function_and_trigger_changes_roll_back_to_the_definitions_before(
    rows_db,  # noqa: F811
    new_database,
    tmp_path,
    runner,
):
    definitions = _definitions(rows_db)
    source = _routines_migration(*definitions)
    directory = migrations_with(tmp_path / "migrations", {"006_routines": source}, new_database())
    (directory / "conf.py").write_text((MIGRATIONS / "conf.py").read_text())
    before = state(rows_db)[0]
    result = _run(runner, "migrate", directory, rows_db)
    assert result.returncode == 0, result.stderr
    after = state(rows_db)[0]
    assert after.triggers["threads"] == {
        "threads_touch": ON_THREADS.replace("ON threads", "ON public.threads")
    }
    assert "OF content, entity" in after.triggers["messages"]["messages_search_vector_trigger"]
    assert catalog.diff(before, after)  # the body changed too
    result = _run(runner, "rollback", directory, rows_db)
    assert result.returncode == 0, result.stderr
    assert catalog.diff(before, state(rows_db)[0]) == []
    assert _definitions(rows_db) == definitions
    result = _run(runner, "migrate", directory, rows_db)
    assert result.returncode == 0, result.stderr
    assert catalog.diff(after, state(rows_db)[0]) == []


def test_replacing_a_function_that_is_not_the_recorded_one_is_refused(
    rows_db,  # noqa: F811
    new_database,
    tmp_path,
):
    function, trigger = _definitions(rows_db)
    source = _routines_migration(function, trigger)
    directory = migrations_with(tmp_path / "migrations", {"006_routines": source}, new_database())
    wrong = _routines_migration(function.replace("'english'", "'simple'"), trigger)
    (directory / "006_routines.py").write_text(wrong)  # records another previous body
    before = state(rows_db)[0]
    result = run_cli("migrate", "--directory", str(directory), "--database", rows_db)
    line = one_line_error(result)
    assert "refusing to replace function update_messages_search_vector()" in line
    assert "nothing of this migration ran" in line
    assert catalog.diff(before, state(rows_db)[0]) == []


def test_columns_compare_by_name_and_by_order_only_for_the_legacy_contract():
    def table(*names: str) -> catalog.Catalog:
        columns = [catalog.Column(name, "integer", False, None) for name in names]
        return catalog.Catalog(tables={"t": columns})

    moved = table("a", "c", "d", "b")
    assert catalog.diff(table("a", "b", "c", "d"), moved) == []
    ordered = catalog.diff(table("a", "b", "c", "d"), moved, column_order=True)
    assert [(d.kind, d.found) for d in ordered] == [("column order", "a, c, d, b")]


def test_generated_type_change_prints_its_phases_with_sql(server_url, project):  # noqa: F811
    directory, models = project
    made = create("change", server_url=server_url, directory=directory,
                  models=models(edit(MODELS, *BIGINT_COUNT)), sql_only=True)  # fmt: skip
    statements = [line for line in (made.sql or "").splitlines() if line]
    assert statements[:3] == [
        "BEGIN;",
        "LOCK TABLE token_consumption IN ACCESS EXCLUSIVE MODE;",
        "ALTER TABLE token_consumption ADD COLUMN chatdb_new_count bigint;",
    ]
    assert "UPDATE token_consumption SET chatdb_new_count = count::bigint WHERE " \
           "chatdb_new_count IS NULL AND count IS NOT NULL;" in statements  # fmt: skip
    assert statements[-3:] == [
        "DROP FUNCTION chatdb_sync_token_consumption_count();",
        "ALTER TABLE token_consumption DROP CONSTRAINT "
        "chatdb_nn_token_consumption_chatdb_new_count;",
        "COMMIT;",
    ]
    assert not list(directory.glob(f"{NEXT}_*"))


INDEXED = """import peewee as pw
from peewee_migrate import Migrator

from chatdb import operations

atomic = False


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    operations.change_column_type(migrator, "threads", "vlab_id", "text")


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    operations.change_column_type(migrator, "threads", "vlab_id", "uuid")
"""


def test_a_hand_written_type_change_of_an_indexed_column_is_refused_before_it_expands(
    rows_db,  # noqa: F811
    tmp_path,
):
    directory = migrations_with(tmp_path / "migrations", {"006_indexed": INDEXED})
    before = state(rows_db)[0]
    result = run_cli("migrate", "--directory", str(directory), "--database", rows_db)
    line = one_line_error(result)
    assert "refusing to change the type of threads.vlab_id online: index " in line
    assert "ix_threads_vlab_id depend(s) on it" in line
    assert catalog.diff(before, state(rows_db)[0]) == []


# A table split: message bodies moved to a table of their own, kept in step by a trigger
# while the old column is still written, copied in batches small enough to be killed.
SYNC_BODIES = """CREATE OR REPLACE FUNCTION public.sync_bodies()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$ BEGIN
    INSERT INTO bodies (id, body) VALUES (NEW.message_id, NEW.content)
    ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body;
    RETURN NEW;
END $function$
"""
SYNC_TRIGGER = (
    "CREATE TRIGGER sync_bodies AFTER INSERT OR UPDATE ON public.messages "
    "FOR EACH ROW EXECUTE FUNCTION sync_bodies()"
)
SPLIT = f"""import peewee as pw
from peewee_migrate import Migrator

from chatdb import operations

atomic = False
SYNC_BODIES = {SYNC_BODIES!r}
SYNC_TRIGGER = {SYNC_TRIGGER!r}


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    operations.create_table(
        migrator, "bodies", [("id", "uuid", True, None), ("body", "text", True, None)],
        [("bodies_pkey", "PRIMARY KEY (id)"),
         ("bodies_id_fkey", "FOREIGN KEY (id) REFERENCES messages(message_id) ON DELETE CASCADE")],
    )
    operations.create_function(migrator, SYNC_BODIES)
    operations.create_trigger(migrator, SYNC_TRIGGER)
    operations.copy_rows(
        migrator, "messages", "bodies", {{"id": "message_id", "body": "content"}}, match="id",
        batch_size=4, pause=0.1,
    )


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    operations.drop_trigger(migrator, SYNC_TRIGGER)
    operations.drop_function(migrator, SYNC_BODIES)
    operations.drop_table(migrator, "bodies")
"""


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_table_split_resumes_after_a_kill(runner, rows_db, new_database, tmp_path):  # noqa: F811
    """Every row copied once, as last written, however the runs were cut."""
    directory = migrations_with(tmp_path / "migrations", {"006_split": SPLIT}, new_database())
    before = state(rows_db)
    args = ("--directory", str(directory), "--database", rows_db)
    _kill_when(rows_db, chatdb_command("migrate", *args), tmp_path / "first.log",
               "SELECT count(*) >= 8 FROM bodies")  # fmt: skip
    copied = _values(rows_db, "SELECT count(*) FROM bodies")[0][0]
    # Written between the runs, while both exist: the trigger keeps the copy in step.
    last = "(SELECT message_id FROM messages ORDER BY message_id DESC LIMIT 1)"
    edited = '{"content": "edited"}'
    execute(rows_db, f"UPDATE messages SET content = '{edited}' WHERE message_id = {last}")
    result = _up(runner, directory, rows_db)
    assert result.returncode == 0, result.stderr
    total = _values(rows_db, "SELECT count(*) FROM messages")[0][0]
    assert copied < total
    same = (
        "SELECT count(*) FROM messages m JOIN bodies b ON b.id = m.message_id "
        "WHERE b.body = m.content"
    )
    assert _values(rows_db, same) == [(total,)]
    assert _values(rows_db, "SELECT count(*) FROM bodies") == [(total,)]
    result = _down(runner, directory, rows_db, yes=True)
    assert result.returncode == 0, result.stderr
    assert catalog.diff(before[0], state(rows_db)[0]) == []


def test_a_slow_batch_halves_the_next_and_quick_ones_grow_back():
    slow, quick, steady = BATCH_SECONDS * 2, BATCH_SECONDS / 10, BATCH_SECONDS / 2
    assert next_batch_size(1000, slow, 1000) == 500
    assert next_batch_size(SMALLEST_BATCH, slow, 1000) == SMALLEST_BATCH
    assert next_batch_size(4, slow, 4) == 4  # never below a batch_size smaller than the floor
    assert next_batch_size(300, quick, 1000) == 600
    assert next_batch_size(600, quick, 1000) == 1000
    assert next_batch_size(600, steady, 1000) == 600


def test_backfill_batches_commit_without_waiting_for_the_disk(rows_db):  # noqa: F811
    """Each batch commits asynchronously (writers' commits need not queue behind its flushes);
    the setting is the batch's own, never left on the connection."""
    execute(
        rows_db,
        "ALTER TABLE messages ADD COLUMN words integer",
        "CREATE TABLE commit_modes (mode text)",
        "CREATE FUNCTION log_mode() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "INSERT INTO commit_modes VALUES (current_setting('synchronous_commit')); "
        "RETURN NEW; END $$",
        "CREATE TRIGGER log_mode BEFORE UPDATE ON messages "
        "FOR EACH ROW EXECUTE FUNCTION log_mode()",
    )
    database = open_database(rows_db)
    try:
        fill = Backfill.update(
            "backfill messages.words", database, "messages", f"words = {WORDS}",
            "words IS NULL", 4, 0, lambda _db: True,
        )  # fmt: skip
        fill()
        after = database.execute_sql("SHOW synchronous_commit").fetchone()[0]
    finally:
        database.close()
    total = _values(rows_db, "SELECT count(*) FROM messages")[0][0]
    assert total > 4  # more than one batch
    assert _values(rows_db, "SELECT mode, count(*) FROM commit_modes GROUP BY mode") == [
        ("off", total)
    ]
    assert after == "on"
