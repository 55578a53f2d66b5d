"""A migration checks what can refuse before its first statement: no half-way stops.

The rollback below drops a column holding data (confirmed with ``--yes``)
and then removes an enum label that rows still use. It must refuse on the
label before the column is dropped, whatever the order of the steps, and
for every runner.
"""

from __future__ import annotations

import pytest

from tests.conftest import run_cli
from tests.ops_support import applied_names, execute, one_line_error, state
from tests.test_runners import RUNNERS, _down, _project, _up

NOTE_AND_LABEL = """
from chatdb import operations

atomic = False


def migrate(migrator, database, *, fake=False):
    operations.add_column(migrator, "threads", "note", "text")
    operations.add_enum_label(migrator, "entity", "SYSTEM")


def rollback(migrator, database, *, fake=False):
    operations.drop_column(migrator, "threads", "note")
    operations.remove_enum_label(
        migrator, "entity", "SYSTEM",
        keep=["USER", "AI_TOOL", "TOOL", "AI_MESSAGE"], columns=[("messages", "entity", None)],
    )
"""
ROWS = """
INSERT INTO threads (thread_id, title, creation_date, update_date, user_id, note)
VALUES ('11111111-1111-4111-8111-111111111111', 't', now(), now(), gen_random_uuid(), 'kept');
INSERT INTO messages (message_id, creation_date, content, thread_id, entity, is_complete)
VALUES ('22222222-2222-4222-8222-222222222222', now(), '{}',
        '11111111-1111-4111-8111-111111111111', 'SYSTEM', true);
"""


def _note(url: str) -> list[tuple]:
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT note FROM threads")
            return cur.fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_label_in_use_refuses_before_the_confirmed_drop(runner, chatdb_url, tmp_path):
    url = chatdb_url
    directory = _project(tmp_path, {"900_note_and_label": NOTE_AND_LABEL})
    assert _up(runner, directory, url).returncode == 0
    execute(url, ROWS)
    line = one_line_error(_down(runner, directory, url, yes=True), url)
    assert "refusing to remove label SYSTEM from enum entity: rows still use it" in line
    assert _note(url) == [("kept",)], "the column and its data are still there"
    assert applied_names(url)[-1] == "900_note_and_label"

    execute(url, "DELETE FROM messages")
    result = _down(runner, directory, url, yes=True)
    assert result.returncode == 0, result.stderr
    assert run_cli("check", "--database", url).returncode == 0


NOT_NULL = """
from chatdb import operations

atomic = False


def migrate(migrator, database, *, fake=False):
    operations.set_not_null(migrator, "threads", "note")


def rollback(migrator, database, *, fake=False):
    operations.drop_not_null(migrator, "threads", "note")
"""
BACKFILL_THEN_NOT_NULL = """
from chatdb import operations

atomic = False


def migrate(migrator, database, *, fake=False):
    migrator.sql("UPDATE threads SET note = 'none' WHERE note IS NULL")
    operations.set_not_null(migrator, "threads", "note")


def rollback(migrator, database, *, fake=False):
    operations.drop_not_null(migrator, "threads", "note")
"""
CHECK = """
from chatdb import operations


def migrate(migrator, database, *, fake=False):
    operations.add_constraint(
        migrator, "threads", "threads_title_short", "CHECK (length(title) < 10)"
    )


def rollback(migrator, database, *, fake=False):
    operations.drop_constraint(
        migrator, "threads", "threads_title_short", "CHECK (length(title) < 10)"
    )
"""
ADD_NOTE = """
from chatdb import operations


def migrate(migrator, database, *, fake=False):
    operations.add_column(migrator, "threads", "note", "text")


def rollback(migrator, database, *, fake=False):
    operations.drop_column(migrator, "threads", "note")
"""
TWO_THREADS = (
    "INSERT INTO threads (thread_id, title, creation_date, update_date, user_id) VALUES "
    "('11111111-1111-4111-8111-111111111111', 'a rather long title', now(), now(), "
    "gen_random_uuid()), "
    "('33333333-3333-4333-8333-333333333333', 'short', now(), now(), gen_random_uuid())"
)


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize(
    "name,source,said",
    [
        ("901_note_not_null", NOT_NULL,
         "refusing to set threads.note NOT NULL: 2 row(s) of threads hold NULL there"),
        ("901_short_titles", CHECK,
         "refusing to add threads_title_short CHECK (length(title) < 10): 1 row(s) of threads "
         "violate it (thread_id 11111111-1111-4111-8111-111111111111)"),
    ],
    ids=["not-null", "check"],
)  # fmt: skip
def test_rows_that_break_a_new_rule_are_counted_and_nothing_is_left(
    runner, name, source, said, chatdb_url, tmp_path
):
    url = chatdb_url
    directory = _project(tmp_path, {"900_note": ADD_NOTE, name: source})
    assert _up(runner, directory, url, "900_note").returncode == 0
    execute(url, TWO_THREADS)
    before = state(url)
    line = one_line_error(_up(runner, directory, url), url)
    assert said in line and "nothing of this migration ran" in line, line
    assert state(url) == before, "no NOT VALID constraint or check left behind"


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_backfill_before_not_null_in_the_same_migration_is_seen(runner, chatdb_url, tmp_path):
    url = chatdb_url
    directory = _project(
        tmp_path, {"900_note": ADD_NOTE, "901_backfill_then_not_null": BACKFILL_THEN_NOT_NULL}
    )
    assert _up(runner, directory, url, "900_note").returncode == 0
    execute(url, TWO_THREADS)
    result = _up(runner, directory, url)
    assert result.returncode == 0, result.stderr
    assert applied_names(url)[-1] == "901_backfill_then_not_null"


CASCADE = "FOREIGN KEY (message_id) REFERENCES messages(message_id) ON DELETE CASCADE"
SET_NULL = "FOREIGN KEY (message_id) REFERENCES messages(message_id) ON DELETE SET NULL"
KEEP_TOOL_CALLS = f"""
from chatdb import operations

atomic = False


def migrate(migrator, database, *, fake=False):
    operations.drop_not_null(migrator, "tool_calls", "message_id")
    operations.drop_constraint(migrator, "tool_calls", "tool_calls_message_id_fkey", {CASCADE!r})
    operations.add_constraint(migrator, "tool_calls", "tool_calls_message_id_fkey", {SET_NULL!r})


def rollback(migrator, database, *, fake=False):
    operations.drop_constraint(migrator, "tool_calls", "tool_calls_message_id_fkey", {SET_NULL!r})
    operations.add_constraint(migrator, "tool_calls", "tool_calls_message_id_fkey", {CASCADE!r})
    operations.set_not_null(migrator, "tool_calls", "message_id")
"""
A_MESSAGE = """
INSERT INTO threads (thread_id, title, creation_date, update_date, user_id)
VALUES ('11111111-1111-4111-8111-111111111111', 't', now(), now(), gen_random_uuid());
INSERT INTO messages (message_id, creation_date, content, thread_id, entity, is_complete)
VALUES ('22222222-2222-4222-8222-222222222222', now(), '{}',
        '11111111-1111-4111-8111-111111111111', 'USER', true);
"""
TOOL_CALL = (
    "INSERT INTO tool_calls (tool_call_id, name, arguments, validated, message_id) "
    "VALUES ('call-1', 'n', '{}', true, '22222222-2222-4222-8222-222222222222')"
)


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_rollback_after_set_null_nulled_rows_refuses_before_its_first_statement(
    runner, chatdb_url, tmp_path
):
    url = chatdb_url
    directory = _project(tmp_path, {"900_keep_tool_calls": KEEP_TOOL_CALLS})
    assert _up(runner, directory, url).returncode == 0
    execute(url, A_MESSAGE)
    execute(url, TOOL_CALL)
    execute(url, "DELETE FROM messages")  # ON DELETE SET NULL: the tool call stays, unowned
    before = state(url)
    line = one_line_error(_down(runner, directory, url, yes=True), url)
    assert "refusing to set tool_calls.message_id NOT NULL: 1 row(s)" in line, line
    assert state(url) == before, "the SET NULL key is still there, nothing half done"
    assert applied_names(url)[-1] == "900_keep_tool_calls"
    execute(url, "DELETE FROM tool_calls")
    result = _down(runner, directory, url, yes=True)
    assert result.returncode == 0, result.stderr
    assert run_cli("check", "--database", url).returncode == 0
