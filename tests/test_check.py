"""`chatdb check` and the drift verdict of `chatdb status`: every kind of drift, and tampering."""

from __future__ import annotations

import json

import pytest

from chatdb.migrate import loader
from tests.conftest import MIGRATIONS, load_legacy, run_cli
from tests.ops_support import execute, migrations_with, one_line_error, state

HEAD = loader.names(MIGRATIONS)[-1]


@pytest.fixture
def at_head(db_url: str) -> str:
    result = run_cli("migrate", "--database", db_url)
    assert result.returncode == 0, result.stderr
    return db_url


def check(url: str, *args: str) -> tuple[int, list[str]]:
    result = run_cli("check", "--database", url, *args)
    assert "Traceback" not in result.stderr
    return result.returncode, result.stdout.splitlines()


def test_clean_at_head_and_in_status(at_head):
    code, lines = check(at_head)
    assert code == 0, lines
    assert lines[-1] == f"clean: the schema is what the migrations leave after {HEAD}"
    status = run_cli("status", "--database", at_head)
    assert f"drift: clean: the schema is what the migrations leave after {HEAD}" in status.stdout
    as_json = json.loads(run_cli("status", "--json", "--database", at_head).stdout)
    assert as_json["drift"]["clean"] is True
    assert as_json["drift"]["differences"] == [] and as_json["drift"]["tampered"] == []


def test_clean_on_an_empty_database(db_url):
    assert check(db_url)[0] == 0


@pytest.mark.parametrize(
    "change,expected",
    [
        (
            "DROP INDEX ix_messages_search_vector",
            "messages.search_vector: index ix_messages_search_vector is missing",
        ),
        (
            "CREATE INDEX ix_extra ON threads (title)",
            "threads.title: unexpected index ix_extra",
        ),
        (
            "ALTER TABLE threads ADD COLUMN extra int",
            "threads.extra: unexpected column (integer)",
        ),
        ("ALTER TABLE tool_calls DROP COLUMN validated", "tool_calls.validated: column is missing"),
        (
            "ALTER TABLE token_consumption ALTER COLUMN count TYPE bigint",
            "token_consumption.count: type is bigint, expected integer",
        ),
        (
            "ALTER TABLE threads ALTER COLUMN vlab_id SET NOT NULL",
            "threads.vlab_id: is NOT NULL, expected nullable",
        ),
        (
            "ALTER TABLE tool_calls ALTER COLUMN name SET DEFAULT 'x'",
            "tool_calls.name: default is 'x'::character varying, expected none",
        ),
        (
            "ALTER TABLE tool_selection DROP CONSTRAINT tool_selection_message_id_fkey",
            "tool_selection: constraint tool_selection_message_id_fkey is missing",
        ),
        (
            "ALTER TABLE threads ADD CONSTRAINT title_len CHECK (length(title) < 500)",
            "threads: unexpected constraint title_len",
        ),
        (
            "DROP TRIGGER messages_search_vector_trigger ON messages",
            "messages: trigger messages_search_vector_trigger is missing",
        ),
        (
            "CREATE FUNCTION extra() RETURNS int LANGUAGE sql AS 'SELECT 1'",
            "unexpected function extra()",
        ),
        (
            "CREATE OR REPLACE FUNCTION update_messages_search_vector() RETURNS trigger "
            "LANGUAGE plpgsql AS $f$ BEGIN NEW.search_vector := NULL; RETURN NEW; END $f$",
            "function update_messages_search_vector(): its body is not one chatdb knows",
        ),
        (
            "ALTER TABLE messages DISABLE TRIGGER messages_search_vector_trigger",
            "messages: trigger messages_search_vector_trigger is disabled; expected enabled",
        ),
        ("ALTER TYPE entity ADD VALUE 'SYSTEM'", "enum entity: unexpected label SYSTEM"),
        ("CREATE TABLE scratch (id int)", "unexpected table scratch"),
        ("CREATE EXTENSION pg_trgm", "unexpected extension pg_trgm"),
    ],
)
def test_each_kind_of_drift_is_listed_and_fails(at_head, change, expected):
    execute(at_head, change)
    code, lines = check(at_head)
    assert code == 1
    assert any(expected in line for line in lines), lines
    assert lines[-1].startswith("DRIFT: ")
    status = run_cli("status", "--database", at_head).stdout
    assert "drift: DRIFT: " in status and "`chatdb check` lists them" in status
    drift = json.loads(run_cli("status", "--json", "--database", at_head).stdout)["drift"]
    assert drift["clean"] is False
    assert any(expected in line for line in drift["differences"])


def test_a_changed_foreign_key_action_is_drift(at_head):
    execute(
        at_head,
        "ALTER TABLE tool_calls DROP CONSTRAINT tool_calls_message_id_fkey, "
        "ADD CONSTRAINT tool_calls_message_id_fkey FOREIGN KEY (message_id) "
        "REFERENCES messages (message_id) ON DELETE SET NULL",
    )
    code, lines = check(at_head)
    assert code == 1
    assert any("constraint tool_calls_message_id_fkey is" in line for line in lines), lines


def test_an_invalid_index_is_drift(at_head):
    execute(at_head, "CREATE INDEX ix_threads_title_probe ON threads (title)")
    # An interrupted CREATE INDEX CONCURRENTLY leaves the same catalog state behind.
    execute(
        at_head,
        "UPDATE pg_index SET indisvalid = false "
        "WHERE indexrelid = 'ix_messages_search_vector'::regclass",
        "DROP INDEX ix_threads_title_probe",
    )
    code, lines = check(at_head)
    assert code == 1
    assert any("index ix_messages_search_vector is INVALID" in line for line in lines), lines


def test_check_works_at_any_point_of_the_history(db_url):
    assert run_cli("migrate", "--to", "001_baseline", "--database", db_url).returncode == 0
    code, lines = check(db_url)
    assert code == 0, lines
    assert lines[-1].endswith("after 001_baseline")
    execute(db_url, "ALTER TABLE threads ALTER COLUMN title SET DEFAULT 'New chat'")
    code, lines = check(db_url)
    if HEAD != "001_baseline":
        assert code == 1
        assert any("threads.title: default is 'New chat'" in line for line in lines), lines


# -- tampering --------------------------------------------------------------------


def test_a_changed_file_is_flagged_and_migrate_refuses_until_accepted(db_url, tmp_path):
    directory = migrations_with(tmp_path / "migrations", {})
    d = ("--directory", str(directory))
    assert run_cli("migrate", *d, "--to", "001_baseline", "--database", db_url).returncode == 0
    baseline = directory / "001_baseline.py"
    baseline.write_text(baseline.read_text() + "\n# edited after it was applied\n")

    code, lines = check(db_url, *d)
    assert code == 1
    assert any(line.startswith("tampered: 001_baseline: file changed") for line in lines), lines
    status = json.loads(run_cli("status", "--json", *d, "--database", db_url).stdout)
    assert status["drift"]["tampered"][0].startswith("001_baseline: file changed")

    before = state(db_url)
    line = one_line_error(run_cli("migrate", *d, "--database", db_url), db_url)
    assert "refusing to migrate: 001_baseline: file changed since it was applied" in line
    assert "--accept-changed" in line
    assert state(db_url) == before
    preview = run_cli("migrate", "--sql", *d, "--database", db_url)
    assert "001_baseline: file changed" in one_line_error(preview, db_url)

    accepted = run_cli("migrate", "--accept-changed", *d, "--database", db_url)
    assert accepted.returncode == 0, accepted.stderr
    assert "accepted the current file of 001_baseline" in accepted.stderr
    assert check(db_url, *d)[0] == 0


def test_a_missing_applied_file_is_flagged_and_refused(db_url, tmp_path):
    directory = migrations_with(tmp_path / "migrations", {})
    d = ("--directory", str(directory))
    assert run_cli("migrate", *d, "--database", db_url).returncode == 0
    if HEAD == "001_baseline":
        pytest.skip("the project has a single migration")
    (directory / f"{HEAD}.py").rename(tmp_path / "away.py")
    code, lines = check(db_url, *d)
    assert code == 1
    assert f"tampered: {HEAD}: applied, but its file is missing from {directory}" in lines
    line = one_line_error(run_cli("migrate", *d, "--accept-changed", "--database", db_url), db_url)
    assert f"applied migration(s) {HEAD} have no file in {directory}" in line
    line = one_line_error(run_cli("rollback", *d, "--database", db_url), db_url)
    assert f"refusing to roll back: applied migration(s) {HEAD} have no file" in line
    status = run_cli("status", *d, "--database", db_url).stdout
    assert "1 applied migration file(s) changed or missing" in status


# -- what check cannot judge, and what it must explain first ------------------------


def test_another_applications_database_is_an_error_not_clean(db_url):
    execute(db_url, "CREATE TABLE accounts (id int PRIMARY KEY)", "CREATE TABLE invoices (id int)")
    result = run_cli("check", "--database", db_url)
    line = one_line_error(result, db_url)
    assert "holds tables (accounts, invoices) but neither chat tables nor chatdb history" in line
    assert "another application" in line and result.stdout == ""


def test_no_migrations_found_is_an_error_not_clean(db_url, tmp_path):
    result = run_cli("check", "--database", db_url, "--directory", str(tmp_path))
    assert "holds no migrations" in one_line_error(result, db_url)


def test_a_legacy_database_gets_the_verdict_and_next_step_first(new_database):
    url = new_database()
    load_legacy(url)
    code, lines = check(url)
    assert code == 1
    assert lines[1:] == [
        "DRIFT: not handed over to chatdb yet, a legacy Alembic database (alembic_version "
        "6d8986f38d7b); its schema is the legacy head's: `chatdb handover` adopts it"
    ]
    execute(url, "ALTER TABLE messages DISABLE TRIGGER messages_search_vector_trigger")
    code, lines = check(url)
    assert code == 1
    assert lines[1].endswith("differs from the legacy head's in 1 way(s); "
                             "`chatdb handover --dry-run` lists them")  # fmt: skip
    assert lines[2:] == [
        "drift: messages: trigger messages_search_vector_trigger is disabled; expected enabled"
    ]
