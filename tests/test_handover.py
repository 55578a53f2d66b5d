"""``chatdb handover``: recognise, verify, adopt, bring to head, and hand back.

Every test starts from a legacy database rebuilt from the contract's Alembic
chain (not by chatdb's migrations) holding rows in every table, and runs the
real command in a subprocess.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from urllib.parse import urlsplit

import psycopg2
import pytest

from chatdb import catalog
from chatdb.catalog.legacy_version import LEGACY_HEAD
from chatdb.db.connect import make_database
from chatdb.legacy.handover import BASELINE
from chatdb.migrate import history, loader
from chatdb.migrate.lock import MIGRATION_LOCK_KEY
from tests.conftest import MIGRATIONS, REPO, run_cli
from tests.handover_support import execute, fingerprint, legacy_with_rows

LATER = [name for name in loader.names(MIGRATIONS) if name != BASELINE]
CASCADES = "004_cascade_deletes"


@pytest.fixture
def legacy_url(new_database) -> str:
    return legacy_with_rows(new_database())


def _catalog(url: str) -> catalog.Catalog:
    db = make_database(url)
    with db.connection_context():
        return catalog.read_catalog(db)


def _applied(url: str) -> list[history.Applied]:
    db = make_database(url)
    with db.connection_context():
        return history.applied(db)


def _alembic(url: str) -> list[str]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT version_num FROM alembic_version")
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def _refusal(result: subprocess.CompletedProcess[str], url: str) -> str:
    """The single error line of a refusal, checked for the house rules."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    if lines and lines[0].startswith("target: "):  # named before connecting
        lines = lines[1:]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    password = urlsplit(url).password
    if password:
        assert password not in result.stderr + result.stdout
    return lines[0]


def _unchanged(url: str, before_catalog: catalog.Catalog, before_rows: dict) -> None:
    """Nothing was written: no history table, same catalog, same rows."""
    after = _catalog(url)
    assert history.TABLE not in after.tables
    assert catalog.diff(before_catalog, after) == []
    assert fingerprint(url) == before_rows


def test_seeded_legacy_database_has_rows_in_every_table(legacy_url):
    counts = {table: count for table, (count, _) in fingerprint(legacy_url).items()}
    assert all(counts.values()), counts


# -- recognition -----------------------------------------------------------------


@pytest.mark.parametrize(
    "sql,expected",
    [
        (
            "UPDATE alembic_version SET version_num = 'cd5a73ea91db'",
            "is at legacy revision cd5a73ea91db (2025-08-11: messages.search_vector with its "
            "trigger and GIN index), not at the legacy head 6d8986f38d7b; bring it to "
            "6d8986f38d7b with the legacy backend first",
        ),
        (
            "UPDATE alembic_version SET version_num = 'b57e558cf11f'",
            "is at legacy revision b57e558cf11f (2024-11-11: initial:",
        ),
        (
            "UPDATE alembic_version SET version_num = 'deadbeef0000'",
            "alembic_version holds 'deadbeef0000', which is not a revision of the legacy chain",
        ),
        (
            "INSERT INTO alembic_version VALUES ('cd5a73ea91db')",
            "alembic_version holds 2 rows (",
        ),
        (
            "DELETE FROM alembic_version",
            "alembic_version is empty, so its legacy revision is unknown",
        ),
        (
            "DROP TABLE alembic_version",
            "has chat tables (complexity_estimation, messages, threads, token_consumption, "
            "tool_calls, tool_selection) but no alembic_version table",
        ),
    ],
    ids=["older-revision", "initial-revision", "unknown", "several-rows", "empty", "no-table"],
)
def test_recognition_refuses_what_is_not_the_legacy_head(legacy_url, sql, expected):
    execute(legacy_url, sql)
    before, rows = _catalog(legacy_url), fingerprint(legacy_url)
    line = _refusal(run_cli("handover", "--database", legacy_url), legacy_url)
    assert expected in line
    _unchanged(legacy_url, before, rows)


def test_empty_database_points_to_migrate(db_url):
    line = _refusal(run_cli("handover", "--database", db_url), db_url)
    assert (
        "is empty, there is nothing to hand over; create the schema with `chatdb migrate`" in line
    )
    assert _catalog(db_url).tables == {}


def test_unrelated_database_is_refused(db_url):
    execute(db_url, "CREATE TABLE invoices (id int)")
    line = _refusal(run_cli("handover", "--database", db_url), db_url)
    assert "holds tables (invoices) but neither chat tables nor alembic_version" in line


def test_database_chatdb_created_needs_nothing(db_url):
    _ok(run_cli("migrate", "--database", db_url))
    before = _applied(db_url)
    out = _ok(run_cli("handover", "--database", db_url))
    assert f"is already managed by chatdb ({BASELINE} applied on" in out
    assert _applied(db_url) == before


# -- verification ----------------------------------------------------------------

DRIFTS = {
    "missing-index": (
        "DROP INDEX ix_messages_search_vector",
        ["messages.search_vector: index ix_messages_search_vector is missing"],
    ),
    "missing-trigger": (
        "DROP TRIGGER messages_search_vector_trigger ON messages",
        [
            "messages: trigger messages_search_vector_trigger is missing (CREATE TRIGGER "
            "messages_search_vector_trigger BEFORE INSERT OR UPDATE ON public.messages FOR EACH "
            "ROW EXECUTE FUNCTION update_messages_search_vector())"
        ],
    ),
    "changed-type": (
        "ALTER TABLE threads ALTER COLUMN title TYPE text",
        ["threads.title: type is text, expected character varying"],
    ),
    "extra-column": (
        "ALTER TABLE messages ADD COLUMN model varchar",
        ["messages.model: unexpected column (character varying)"],
    ),
    "missing-enum-label": (
        """
        ALTER TYPE reasoninglevels RENAME TO reasoninglevels_old;
        CREATE TYPE reasoninglevels AS ENUM ('NONE', 'MINIMAL', 'LOW', 'MEDIUM');
        ALTER TABLE complexity_estimation ALTER COLUMN reasoning TYPE reasoninglevels
            USING reasoning::text::reasoninglevels;
        DROP TYPE reasoninglevels_old;
        """,
        ["enum reasoninglevels: label HIGH is missing"],
    ),
    "nullability-and-default": (
        "UPDATE tool_calls SET validated = false WHERE validated IS NULL; "
        "ALTER TABLE tool_calls ALTER COLUMN validated SET NOT NULL; "
        "ALTER TABLE tool_calls ALTER COLUMN validated SET DEFAULT false",
        [
            "tool_calls.validated: is NOT NULL, expected nullable",
            "tool_calls.validated: default is false, expected none",
        ],
    ),
    "missing-function": (
        "DROP FUNCTION update_messages_search_vector() CASCADE",
        ["function update_messages_search_vector() is missing"],
    ),
    "replaced-function": (
        "CREATE OR REPLACE FUNCTION update_messages_search_vector() RETURNS trigger "
        "LANGUAGE plpgsql AS $f$ BEGIN NEW.search_vector := NULL; RETURN NEW; END $f$",
        ["function update_messages_search_vector(): its body is not one chatdb knows"],
    ),
    "disabled-trigger": (
        "ALTER TABLE messages DISABLE TRIGGER messages_search_vector_trigger",
        ["messages: trigger messages_search_vector_trigger is disabled; expected enabled"],
    ),
}


@pytest.mark.parametrize("kind", list(DRIFTS))
def test_drift_stops_before_anything_is_written(legacy_url, kind):
    sql, differences = DRIFTS[kind]
    execute(legacy_url, sql)
    before, rows = _catalog(legacy_url), fingerprint(legacy_url)
    line = _refusal(run_cli("handover", "--database", legacy_url), legacy_url)
    assert "does not match the legacy schema at 6d8986f38d7b" in line
    assert "nothing was written" in line
    for difference in differences:
        assert difference in line
    _unchanged(legacy_url, before, rows)


def test_every_difference_is_listed_at_once(legacy_url):
    kinds = ["missing-index", "changed-type", "extra-column", "missing-enum-label"]
    for kind in kinds:
        execute(legacy_url, DRIFTS[kind][0])
    before, rows = _catalog(legacy_url), fingerprint(legacy_url)
    for arguments in (["--dry-run"], []):
        line = _refusal(run_cli("handover", "--database", legacy_url, *arguments), legacy_url)
        assert "(4 difference(s))" in line
        for kind in kinds:
            assert DRIFTS[kind][1][0] in line
    _unchanged(legacy_url, before, rows)


# -- adoption, head, second run --------------------------------------------------


def test_dry_run_prints_the_plan_and_writes_nothing(legacy_url):
    before, rows = _catalog(legacy_url), fingerprint(legacy_url)
    out = _ok(run_cli("handover", "--database", legacy_url, "--dry-run"))
    assert "dry run, nothing written" in out
    assert f"1. record {BASELINE} as applied (adopted from Alembic {LEGACY_HEAD})" in out
    for name in LATER:
        assert f"apply {name}" in out
    _unchanged(legacy_url, before, rows)


def test_handover_adopts_brings_to_head_and_keeps_every_row(legacy_url):
    rows = fingerprint(legacy_url)
    out = _ok(run_cli("handover", "--database", legacy_url))
    assert f"adopted: {BASELINE} recorded as applied, from Alembic {LEGACY_HEAD}" in out
    assert f"applied {len(LATER)} migration(s)" in out if LATER else "at head" in out

    applied = _applied(legacy_url)
    assert [a.name for a in applied] == [BASELINE, *LATER]
    assert applied[0].adopted_from == LEGACY_HEAD
    assert applied[0].checksum == loader.checksum(MIGRATIONS / f"{BASELINE}.py")
    assert all(a.adopted_from is None for a in applied[1:])
    assert _alembic(legacy_url) == [LEGACY_HEAD]
    assert fingerprint(legacy_url) == rows

    status = _ok(run_cli("status", "--database", legacy_url))
    assert f"[x] {BASELINE}" in status
    assert f"(adopted from Alembic {LEGACY_HEAD})" in status
    assert "pending (0)" in status

    again_catalog = _catalog(legacy_url)
    again = _ok(run_cli("handover", "--database", legacy_url))
    assert "is already handed over (001_baseline adopted from Alembic 6d8986f38d7b on" in again
    assert "nothing to do" in again
    assert _applied(legacy_url) == applied
    assert catalog.diff(again_catalog, _catalog(legacy_url)) == []
    assert fingerprint(legacy_url) == rows


def test_baseline_only_records_without_running_anything(legacy_url):
    legacy_catalog, rows = _catalog(legacy_url), fingerprint(legacy_url)
    out = _ok(run_cli("handover", "--database", legacy_url, "--baseline-only"))
    assert f"{len(LATER)} migration(s) pending" in out
    assert [a.name for a in _applied(legacy_url)] == [BASELINE]
    assert catalog.diff(legacy_catalog, _catalog(legacy_url).without(history.TABLE)) == []
    assert fingerprint(legacy_url) == rows
    dry = _ok(run_cli("handover", "--dry-run", "--database", legacy_url))
    assert f"{len(LATER)} migration(s) pending: `chatdb migrate` applies them" in dry
    assert [a.name for a in _applied(legacy_url)] == [BASELINE]
    again = _ok(run_cli("handover", "--database", legacy_url))
    assert "already handed over" in again
    assert f"applied the {len(LATER)} migration(s) left: {', '.join(LATER)}" in again
    assert [a.name for a in _applied(legacy_url)] == [BASELINE, *LATER]
    assert fingerprint(legacy_url) == rows


def test_a_rerun_of_an_interrupted_handover_finishes_it(legacy_url):
    """Cut off in 004 (a key swapped, NOT VALID): the rerun does not exit 0 with work pending."""
    rows = fingerprint(legacy_url)
    _ok(run_cli("handover", "--baseline-only", "--database", legacy_url))
    _ok(run_cli("migrate", "--to", "003_foreign_key_and_listing_indexes", "--database", legacy_url))
    execute(
        legacy_url,
        "ALTER TABLE messages DROP CONSTRAINT messages_thread_id_fkey, ADD CONSTRAINT "
        "messages_thread_id_fkey FOREIGN KEY (thread_id) REFERENCES threads(thread_id) "
        "ON DELETE CASCADE NOT VALID",
    )
    again = _ok(run_cli("handover", "--database", legacy_url))
    assert "applied the 2 migration(s) left: 004_cascade_deletes, 005_scope_indexes" in again
    assert run_cli("check", "--database", legacy_url).returncode == 0
    assert fingerprint(legacy_url) == rows


def test_a_failing_migration_after_adoption_says_the_baseline_is_adopted(legacy_url, tmp_path):
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, directory)
    (directory / "900_broken.py").write_text(
        "def migrate(migrator, database, fake=False):\n"
        '    migrator.sql("ALTER TABLE no_such_table ADD COLUMN x int")\n\n\n'
        "def rollback(migrator, database, fake=False):\n"
        "    pass\n"
    )
    rows = fingerprint(legacy_url)
    result = run_cli("handover", "--database", legacy_url, "--directory", str(directory))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    # the runner reports each migration it applies; the error is the last line
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ")
    assert f"{BASELINE} was adopted from Alembic {LEGACY_HEAD}, but bringing" in line
    assert "900_broken" in line
    assert "`chatdb migrate` finishes the job" in line
    assert [a.name for a in _applied(legacy_url)] == [BASELINE, *LATER]
    assert fingerprint(legacy_url) == rows


def test_handed_over_and_fresh_databases_have_the_same_catalog(legacy_url, db_url):
    _ok(run_cli("handover", "--database", legacy_url))
    _ok(run_cli("migrate", "--database", db_url))
    handed = _catalog(legacy_url).without(history.TABLE)
    fresh = _catalog(db_url).without(history.TABLE)
    assert catalog.diff(fresh, handed) == []


def test_two_handovers_at_once_adopt_once(legacy_url):
    """Both wait behind the migrator lock; one adopts, the other then finds it done."""
    holder = psycopg2.connect(legacy_url)
    holder.autocommit = True
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    command = [sys.executable, "-m", "chatdb", "handover", "--database", legacy_url]
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
            runs = [
                subprocess.Popen(
                    command,
                    cwd=REPO,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for _ in range(2)
            ]
            # each names its target, then says so once it has checked the database and waits
            named = [run.stderr.readline().startswith("target: ") for run in runs]
            waiting = [run.stderr.readline().strip() for run in runs]
            assert named == [True, True]
            assert waiting == ["waiting for another migrator to finish"] * 2, waiting
            cur.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
        outputs = [run.communicate(timeout=120) for run in runs]
    finally:
        holder.close()
    assert [run.returncode for run in runs] == [0, 0], outputs
    stdouts = sorted(out for out, _ in outputs)
    assert sum("adopted:" in out for out in stdouts) == 1, stdouts
    assert sum("is already handed over" in out for out in stdouts) == 1, stdouts
    names = [a.name for a in _applied(legacy_url)]
    assert names == [BASELINE, *LATER]


def test_handover_gives_up_after_the_lock_timeout(legacy_url):
    """A session holding alembic_version stops the handover after --lock-timeout."""
    holder = psycopg2.connect(legacy_url)
    try:
        with holder.cursor() as cur:
            cur.execute("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE")
            result = run_cli("handover", "--database", legacy_url, "--lock-timeout", "0.2")
    finally:
        holder.rollback()
        holder.close()
    line = _refusal(result, legacy_url)
    assert "failed: canceling statement due to lock timeout; nothing was written" in line
    assert "retry once the session holding the lock is done" in line
    assert history.TABLE not in _catalog(legacy_url).tables
    assert "adopted:" in _ok(run_cli("handover", "--database", legacy_url))


# -- undo ------------------------------------------------------------------------


def test_undo_gives_back_exactly_the_legacy_database(legacy_url):
    legacy_catalog, rows = _catalog(legacy_url), fingerprint(legacy_url)
    _ok(run_cli("handover", "--database", legacy_url))
    assert fingerprint(legacy_url) == rows

    plan = _ok(run_cli("handover", "--undo", "--dry-run", "--database", legacy_url))
    assert "dry run, nothing written" in plan
    assert f"drop chatdb's history table {history.TABLE}" in plan
    assert len(_applied(legacy_url)) == 1 + len(LATER)

    out = _ok(run_cli("handover", "--undo", "--database", legacy_url))
    assert f"is the legacy database at {LEGACY_HEAD} again" in out
    assert catalog.diff(legacy_catalog, _catalog(legacy_url)) == []
    assert _alembic(legacy_url) == [LEGACY_HEAD]
    assert fingerprint(legacy_url) == rows

    again = _ok(run_cli("handover", "--undo", "--database", legacy_url))
    assert "has no chatdb history; nothing to undo" in again
    # and the database can be handed over again
    _ok(run_cli("handover", "--database", legacy_url))
    assert _applied(legacy_url)[0].adopted_from == LEGACY_HEAD


EXTRA = """
def migrate(migrator, database, fake=False):
    migrator.sql("CREATE INDEX ix_threads_title ON threads (title)")


def rollback(migrator, database, fake=False):
    migrator.sql("DROP INDEX ix_threads_title")
"""


@pytest.mark.parametrize("damage", ["missing", "changed"])
def test_undo_refuses_a_migration_that_cannot_be_rolled_back(legacy_url, tmp_path, damage):
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, directory)
    extra = directory / "900_extra_index.py"
    extra.write_text(EXTRA)
    _ok(run_cli("handover", "--database", legacy_url, "--directory", str(directory)))
    if damage == "missing":
        extra.unlink()
        why = f"900_extra_index: applied, but its file is missing from {directory}"
    else:
        extra.write_text(EXTRA.replace("ix_threads_title", "ix_threads_name"))
        why = "900_extra_index: file changed since it was applied"
    before, applied, rows = _catalog(legacy_url), _applied(legacy_url), fingerprint(legacy_url)
    result = run_cli("handover", "--undo", "--database", legacy_url, "--directory", str(directory))
    line = _refusal(result, legacy_url)
    assert "a migration after the baseline cannot be rolled back as it was applied" in line
    assert why in line
    assert catalog.diff(before, _catalog(legacy_url)) == []
    assert _applied(legacy_url) == applied
    assert fingerprint(legacy_url) == rows


def test_undo_refuses_when_alembic_version_moved(legacy_url):
    _ok(run_cli("handover", "--database", legacy_url))
    execute(legacy_url, "UPDATE alembic_version SET version_num = 'cd5a73ea91db'")
    line = _refusal(run_cli("handover", "--undo", "--database", legacy_url), legacy_url)
    assert "alembic_version holds cd5a73ea91db instead of 6d8986f38d7b" in line
    assert history.TABLE in _catalog(legacy_url).tables


def test_undo_refuses_a_drifted_database(legacy_url):
    _ok(run_cli("handover", "--database", legacy_url))
    execute(legacy_url, DRIFTS["missing-index"][0])
    before, applied = _catalog(legacy_url), _applied(legacy_url)
    line = _refusal(run_cli("handover", "--undo", "--database", legacy_url), legacy_url)
    assert "its schema is not what its migrations produced" in line
    assert DRIFTS["missing-index"][1][0] in line
    assert catalog.diff(before, _catalog(legacy_url)) == []
    assert _applied(legacy_url) == applied


def test_undo_and_baseline_only_do_not_combine(legacy_url):
    result = run_cli("handover", "--undo", "--baseline-only", "--database", legacy_url)
    assert "--undo and --baseline-only cannot be combined" in _refusal(result, legacy_url)


# -- the script ------------------------------------------------------------------


def test_script_runs_the_same_handover(legacy_url):
    rows = fingerprint(legacy_url)
    script = [sys.executable, "scripts/alembic_handover.py"]
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*script, *args], cwd=REPO, env=env, capture_output=True, text=True, check=False
        )

    assert "dry run, nothing written" in _ok(run("--database", legacy_url, "--dry-run"))
    assert "adopted:" in _ok(run("--database", legacy_url))
    assert _applied(legacy_url)[0].adopted_from == LEGACY_HEAD
    assert "is the legacy database at" in _ok(run("--database", legacy_url, "--undo"))
    execute(legacy_url, "DELETE FROM alembic_version")
    assert "alembic_version is empty" in _refusal(run("--database", legacy_url), legacy_url)
    assert fingerprint(legacy_url)["threads"] == rows["threads"]


def _swap_back(url: str, table: str, *, validate: bool = True) -> None:
    """What 004's rollback does to one foreign key: back to NO ACTION, same name.

    ``validate=False`` stops where a lost connection during ``VALIDATE`` leaves it.
    """
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE contype = 'f' AND conrelid = %s::regclass",
                (table,),
            )
            name, definition = cur.fetchone()
            plain = definition.replace(" ON DELETE CASCADE", "")
            cur.execute(
                f"ALTER TABLE {table} DROP CONSTRAINT {name}, "
                f"ADD CONSTRAINT {name} {plain} NOT VALID"
            )
            if validate:
                cur.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}")
    finally:
        conn.close()


def test_undo_interrupted_half_way_through_a_rollback_resumes(legacy_url):
    """Foreign keys half swapped back while the history still says head: --undo finishes."""
    legacy_catalog, rows = _catalog(legacy_url), fingerprint(legacy_url)
    _ok(run_cli("handover", "--database", legacy_url))
    # The interrupted --undo had rolled back the migrations after 004, then stopped in 004's.
    _ok(run_cli("rollback", "--to", CASCADES, "--database", legacy_url))
    for table in ("complexity_estimation", "token_consumption"):  # 004's rollback order
        _swap_back(legacy_url, table)
    assert [a.name for a in _applied(legacy_url)][-1] == CASCADES

    out = _ok(run_cli("handover", "--undo", "--database", legacy_url))
    assert f"{CASCADES} was left half rolled back by an interrupted --undo" in out
    assert f"is the legacy database at {LEGACY_HEAD} again" in out
    assert catalog.diff(legacy_catalog, _catalog(legacy_url)) == []
    assert fingerprint(legacy_url) == rows


@pytest.mark.parametrize(
    "command", [("handover", "--undo"), ("rollback", "--to", "003_foreign_key_and_listing_indexes")]
)
def test_a_rollback_cut_off_while_validating_a_swapped_back_key_resumes(legacy_url, command):
    """The connection lost during 004's rollback ``VALIDATE``: the key is back, NOT VALID."""
    legacy_catalog, rows = _catalog(legacy_url), fingerprint(legacy_url)
    _ok(run_cli("handover", "--database", legacy_url))
    _ok(run_cli("rollback", "--to", CASCADES, "--database", legacy_url))
    _swap_back(legacy_url, "complexity_estimation")
    _swap_back(legacy_url, "token_consumption", validate=False)
    out = _ok(run_cli(*command, "--database", legacy_url))
    if command[0] == "handover":
        assert f"{CASCADES} was left half rolled back by an interrupted --undo" in out
        assert catalog.diff(legacy_catalog, _catalog(legacy_url)) == []
    else:
        assert [a.name for a in _applied(legacy_url)][-1] == "003_foreign_key_and_listing_indexes"
        assert run_cli("check", "--database", legacy_url).returncode == 0
    assert fingerprint(legacy_url) == rows


def test_a_captured_log_says_adopted_before_applying(legacy_url):
    """stdout and stderr in one file, as a release log captures them: the order of events."""
    result = subprocess.run(
        [sys.executable, "-m", "chatdb", "handover", "--database", legacy_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stdout
    log = result.stdout
    assert log.index(f"adopted {BASELINE} from Alembic") < log.index(f"applying {LATER[0]}")
