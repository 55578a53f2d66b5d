"""The chatdb command: migrate, rollback, status, and one clear line on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import pytest

from chatdb import catalog
from chatdb.api import demo
from chatdb.db.connect import make_database
from chatdb.db.urls import with_database
from tests.conftest import HEAD, MIGRATIONS, REPO, load_legacy, run_cli


def _tables(url: str) -> list[str]:
    db = make_database(url)
    with db.connection_context():
        return sorted(catalog.read_catalog(db).tables)


def test_migrate_status_rollback(db_url):
    result = run_cli("migrate", "--database", db_url)
    assert result.returncode == 0, result.stderr
    assert "001_baseline" in result.stdout

    status = run_cli("status", "--database", db_url)
    assert status.returncode == 0
    assert "[x] 001_baseline" in status.stdout
    assert "pending (0)" in status.stdout
    assert "alembic_version: 6d8986f38d7b" in status.stdout

    as_json = json.loads(run_cli("status", "--json", "--database", db_url).stdout)
    assert next(a["name"] for a in as_json["applied"]) == "001_baseline"
    assert as_json["pending"] == []

    count = str(len(as_json["applied"]))
    rolled = run_cli("rollback", "--count", count, "--yes", "--database", db_url)
    assert rolled.returncode == 0, rolled.stderr
    assert _tables(db_url) == ["migratehistory"]


def _with_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


def test_status_masks_the_password(db_url):
    password = urlsplit(db_url).password
    assert password, "the test servers require passwords"
    status = run_cli("status", "--database", db_url)
    assert status.returncode == 0, status.stderr
    assert password not in status.stdout + status.stderr
    assert ":***@" in status.stdout


def _one_line_error(result) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    if lines and lines[0].startswith("target: "):  # named before connecting
        lines = lines[1:]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(
    "url,expected",
    [
        (
            "mysql://u:pw@h/db",
            "error: malformed database URL 'mysql://***': not a postgresql:// URL",
        ),
        ("postgresql://u:pw@127.0.0.1:notaport/db", "error: malformed database URL"),
        (
            "postgresql://u:s3cret@127.0.0.1:1/db",
            "error: cannot connect to postgresql://u:***@127.0.0.1:1/db: Connection refused",
        ),
        (
            "postgresql://u:s3cret@no-such-host.invalid/db",
            "error: cannot connect to postgresql://u:***@no-such-host.invalid/db: "
            "could not translate host name",
        ),
    ],
)
def test_bad_urls_give_one_masked_line(url, expected):
    line = _one_line_error(run_cli("migrate", "--database", url))
    assert line.startswith(expected)
    assert "s3cret" not in line and ":pw@" not in line


def test_missing_database_gives_one_line(server_url):
    url = with_database(server_url, "chatdb_no_such_database")
    line = _one_line_error(run_cli("status", "--database", url))
    assert 'database "chatdb_no_such_database" does not exist' in line


def test_wrong_password_gives_one_masked_line(db_url):
    line = _one_line_error(run_cli("status", "--database", _with_user(db_url, "postgres", "wr0ng")))
    assert 'password authentication failed for user "postgres"' in line
    assert "wr0ng" not in line and "postgres:***@" in line


def test_directory_without_migrations(db_url, tmp_path):
    line = _one_line_error(run_cli("migrate", "--database", db_url, "--directory", str(tmp_path)))
    assert "holds no migrations" in line
    assert _tables(db_url) == []


def test_missing_directory(db_url, tmp_path):
    line = _one_line_error(
        run_cli("migrate", "--database", db_url, "--directory", str(tmp_path / "nope"))
    )
    assert "does not exist" in line
    assert _tables(db_url) == []


def test_verbose_shows_the_traceback():
    result = run_cli("-v", "migrate", "--database", "postgresql://u:pw@127.0.0.1:1/db")
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: cannot connect")


def test_migrate_refuses_a_legacy_database_and_points_to_the_handover(db_url):
    load_legacy(db_url)
    before = _tables(db_url)
    line = _one_line_error(run_cli("migrate", "--database", db_url))
    assert "is a legacy Alembic database (alembic_version 6d8986f38d7b)" in line
    assert "chatdb handover --dry-run" in line
    assert _tables(db_url) == before  # not even a history table
    status = run_cli("status", "--database", db_url)
    assert "drift: DRIFT: not handed over to chatdb yet" in status.stdout


def test_migrate_refuses_chat_tables_without_history(db_url):
    load_legacy(db_url)
    db = make_database(db_url)
    with db.connection_context():
        db.execute_sql("DROP TABLE alembic_version")
    line = _one_line_error(run_cli("migrate", "--database", db_url))
    assert "already holds chat tables (complexity_estimation, messages," in line
    assert "migratehistory" not in _tables(db_url)


def test_migrate_shares_a_database_with_unrelated_tables(db_url):
    db = make_database(db_url)
    with db.connection_context():
        db.execute_sql("CREATE TABLE other_app (id int)")
    result = run_cli("migrate", "--database", db_url)
    assert result.returncode == 0, result.stderr
    assert {"other_app", "threads", "messages"} <= set(_tables(db_url))


def test_handover_script_takes_verbose_too():
    script = str(REPO / "scripts" / "alembic_handover.py")
    url = "postgresql://u:pw@127.0.0.1:1/db"
    quiet = subprocess.run(
        [sys.executable, script, "--database", url], capture_output=True, text=True, cwd=REPO
    )
    loud = subprocess.run(
        [sys.executable, script, "--database", url, "-v"], capture_output=True, text=True, cwd=REPO
    )
    assert _one_line_error(quiet).startswith("error: cannot connect to postgresql://u:***@")
    assert loud.returncode == 1 and "Traceback" in loud.stderr


def test_output_into_a_closed_pipe_ends_quietly(db_url):
    """`chatdb status | head -1`: no BrokenPipeError once the reader has gone."""
    process = subprocess.Popen(
        [sys.executable, "-m", "chatdb", "status", "--database", db_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    process.stdout.close()  # the reader leaves before chatdb has printed anything
    _, errors = process.communicate(timeout=120)
    assert "BrokenPipe" not in errors and "error:" not in errors


def test_every_command_as_a_real_process(db_url, tmp_path):
    """Each command once through the interpreter, as a user runs it: exit status and format.

    The rest of the suite calls the same entry point in-process; this is what
    only a real process shows (``python -m chatdb``, the console script's
    start, its exit status and streams).
    """

    def real(*args: str, code: int = 0) -> str:
        result = run_cli(*args, in_process=False, env={"CHATDB_HOME": str(tmp_path / "home")})
        assert result.returncode == code, (args, result.stderr)
        assert "Traceback" not in result.stderr
        return result.stdout

    d = ("--database", db_url)
    assert real("--help").startswith("Usage: chatdb")
    assert "001_baseline" in real("migrate", *d)
    assert json.loads(real("status", "--json", *d))["pending"] == []
    assert "clean" in real("check", *d)
    assert "no change" in real("create", "probe", *d)
    real("lint", *sorted(str(path) for path in MIGRATIONS.glob("0*.py")))
    assert "loaded" in real("demo", *d)
    assert json.loads(real("search", "neurons", "--json", *d))
    assert "Firing rates" in real("threads", "--user", str(demo.DEMO_USER), *d)
    assert isinstance(json.loads(real("usage", "--json", *d)), list)
    real("reindex-search", *d)
    assert "already managed by chatdb" in real("handover", "--dry-run", *d)
    assert "stopped" in real("db", "status")
    assert not (tmp_path / "home" / "pgdata").exists()
    assert f"rolled back 1 migration(s): {HEAD}" in real("rollback", *d)
    bad = real("status", "--database", "postgresql://u:pw@127.0.0.1:1/db", code=1)
    assert bad == ""
