"""An honest history: gaps, duplicates and rows out of order are refused, never re-applied.

Each case edits ``migratehistory`` by hand on a database at head, as an
operator or a bad restore would, then checks that every command notices,
that nothing is applied again, and that ``chatdb repair history`` (proven
by the schema) gives a history every command accepts.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import HEAD, run_cli
from tests.ops_support import applied_names, execute, one_line_error, state

NAMES = [
    "001_baseline",
    "002_database_defaults",
    "003_foreign_key_and_listing_indexes",
    "004_cascade_deletes",
    "005_scope_indexes",
]
BREAKS = {
    "gap": (
        "DELETE FROM migratehistory WHERE name = '003_foreign_key_and_listing_indexes'",
        "003_foreign_key_and_listing_indexes is not recorded, though 005_scope_indexes after it is",
    ),
    "duplicate": (
        "ALTER TABLE migratehistory DROP CONSTRAINT migratehistory_name_key; "
        "INSERT INTO migratehistory (name, migrated_at, checksum) "
        "SELECT name, now(), checksum FROM migratehistory WHERE name = '002_database_defaults'",
        "002_database_defaults is recorded twice",
    ),
    "out-of-order": (
        "UPDATE migratehistory SET id = -id WHERE name = '004_cascade_deletes'",
        "001_baseline is recorded after 004_cascade_deletes, against file order",
    ),
}


def test_the_shipped_names_are_the_ones_here():
    assert NAMES[-1] == HEAD


@pytest.mark.parametrize("broken", BREAKS, ids=list(BREAKS))
def test_a_broken_history_is_refused_everywhere_and_repaired(chatdb_url, broken):
    url = chatdb_url
    sql, problem = BREAKS[broken]
    execute(url, sql)
    before = state(url)

    check = run_cli("check", "--database", url)
    assert check.returncode == 1 and f"history: {problem}" in check.stdout, check.stdout
    status = json.loads(run_cli("status", "--json", "--database", url).stdout)
    assert status["drift"]["clean"] is False
    assert status["drift"]["history"] == [problem]
    for command in (["migrate"], ["rollback"], ["handover", "--undo"]):
        line = one_line_error(run_cli(*command, "--database", url), url)
        assert "chatdb's history is not the migrations in file order" in line, line
        assert problem in line and "`chatdb repair history --dry-run`" in line
    assert state(url) == before, "nothing was applied again or rolled back"

    dry = run_cli("repair", "history", "--dry-run", "--database", url)
    assert dry.returncode == 0, dry.stderr
    assert f"found: {problem}" in dry.stdout
    assert f"would write the history as: {', '.join(NAMES)}" in dry.stdout
    assert state(url) == before

    fixed = run_cli("repair", "history", "--database", url)
    assert fixed.returncode == 0, fixed.stderr
    assert applied_names(url) == NAMES
    assert run_cli("check", "--database", url).returncode == 0
    assert run_cli("migrate", "--database", url).stdout.startswith("applied 0 migration(s)")
    again = run_cli("repair", "history", "--database", url)
    assert "nothing to repair" in again.stdout


def test_a_repair_the_schema_does_not_prove_is_refused(chatdb_url):
    url = chatdb_url
    execute(url, BREAKS["gap"][0], "DROP INDEX ix_threads_user_id_update_date")
    before = state(url)
    line = one_line_error(run_cli("repair", "history", "--database", url), url)
    assert "its schema is not what the migrations up to 005_scope_indexes leave" in line
    assert "does not prove them applied; nothing was changed" in line
    assert state(url) == before
