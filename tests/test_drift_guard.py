"""``migrate`` and ``rollback`` refuse a drifted schema unless ``--ignore-drift``.

A half-done ``atomic = False`` migration is not drift: running it again
completes it, as an interrupted ``CREATE INDEX CONCURRENTLY`` needs.
"""

from __future__ import annotations

from chatdb.catalog import snapshots
from chatdb.migrate import loader
from tests.conftest import MIGRATIONS, run_cli
from tests.ops_support import applied_names, execute, one_line_error, state

NAMES = loader.names(MIGRATIONS)
DEFAULTS, INDEXES = "002_database_defaults", "003_foreign_key_and_listing_indexes"
PROBE = "CREATE INDEX ix_probe ON threads (title)"


def _migrate(url: str, *args: str) -> None:
    result = run_cli("migrate", *args, "--database", url)
    assert result.returncode == 0, result.stderr


def _refused(url: str, *args: str) -> str:
    before = state(url)
    line = one_line_error(run_cli(*args, "--database", url), url)
    assert state(url) == before
    return line


def _new_indexes(name: str) -> dict[str, str]:
    """Indexes migration ``name`` adds: name -> definition."""
    before = snapshots.expected(MIGRATIONS, NAMES[NAMES.index(name) - 1]).indexes
    after = snapshots.expected(MIGRATIONS, name).indexes
    return {ix: after[ix].definition for ix in after.keys() - before.keys()}


def test_drift_is_refused_and_ignore_drift_runs_anyway(db_url):
    _migrate(db_url, "--to", DEFAULTS)
    execute(db_url, PROBE)
    for command in (["migrate"], ["migrate", "--sql"], ["rollback"], ["rollback", "--sql"]):
        line = _refused(db_url, *command)
        verb = "migrate" if command[0] == "migrate" else "roll back"
        assert f"refusing to {verb}: the schema differs from what the applied migrations " in line
        assert (
            f"after {DEFAULTS} (1 difference(s): threads.title: unexpected index ix_probe" in line
        )
        assert line.endswith("; or pass --ignore-drift to go on anyway")
    _migrate(db_url, "--ignore-drift")
    assert applied_names(db_url) == NAMES
    rolled = run_cli("rollback", "--ignore-drift", "--database", db_url)
    assert rolled.returncode == 0, rolled.stderr
    assert applied_names(db_url) == NAMES[:-1]


def test_an_index_built_but_not_recorded_is_completed_not_refused(db_url):
    _migrate(db_url, "--to", DEFAULTS)
    definition = sorted(_new_indexes(INDEXES).values())[0]
    execute(db_url, definition)  # the migration was killed after this build finished
    _migrate(db_url)
    assert applied_names(db_url) == NAMES
    assert run_cli("check", "--database", db_url).returncode == 0


def test_half_done_plus_other_drift_is_refused(db_url):
    _migrate(db_url, "--to", DEFAULTS)
    execute(db_url, sorted(_new_indexes(INDEXES).values())[0], PROBE)
    assert "threads.title: unexpected index ix_probe" in _refused(db_url, "migrate")


def test_an_interrupted_rollback_is_completed_by_rollback_only(db_url):
    _migrate(db_url, "--to", INDEXES)
    execute(db_url, f"DROP INDEX {sorted(_new_indexes(INDEXES))[0]}")
    assert "is missing" in _refused(db_url, "migrate")  # between 002 and 003, not 003 and 004
    rolled = run_cli("rollback", "--database", db_url)
    assert rolled.returncode == 0, rolled.stderr
    assert applied_names(db_url) == NAMES[:2]
    assert run_cli("check", "--database", db_url).returncode == 0
