"""Input checked at the edge, and one set of conventions for every command.

Usage errors (an unknown option, a missing argument, a value out of range)
are one line on stderr and exit 2, refused before anything runs; ``-h`` is
``--help``; ``-v`` works before or after the command name.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys

import pytest

from chatdb import catalog
from chatdb.db.connect import make_database
from tests.conftest import REPO, TEST_PASSWORD, run_cli

UNREACHABLE = "postgresql://u:pw@127.0.0.1:1/db"


def _tables(url: str) -> list[str]:
    db = make_database(url)
    with db.connection_context():
        return sorted(catalog.read_catalog(db).tables)


def _usage_line(result: subprocess.CompletedProcess[str], command: str) -> str:
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and lines[0].endswith(f"(see {command} --help)")
    return lines[0]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["migrate", "--lock-timeout", "1e308"], "'--lock-timeout': 1e+308 is not in the range"),
        (["migrate", "--lock-timeout", "nan"], "'nan' is not a number of seconds"),
        (["migrate", "--lock-timeout", "inf"], "'--lock-timeout': inf is not in the range"),
        (["handover", "--lock-wait", "1e308"], "'--lock-wait': 1e+308 is not in the range"),
        (["rollback", "--lock-wait", "-1"], "'--lock-wait': -1.0 is not in the range"),
        (["rollback", "--count", "0"], "'--count': 0 is not in the range 1<=x<=10000"),
        (["search", "x", "--limit", str(10**20)], "'--limit': 100000000000000000000 is not"),
        (["threads", "--user", "00000000-0000-0000-0000-000000000000", "--limit", "-1"], "-1"),
        (["reindex-search", "--batch-size", str(10**20)], "'--batch-size': 1000000000000"),
    ],
)
def test_absurd_numbers_are_refused_before_anything_runs(db_url, args, expected):
    """1e308 used to pass, then fail at the first step saying a rerun completes it."""
    command = "chatdb " + args[0]
    line = _usage_line(run_cli(*args, "--database", db_url), command)
    assert expected in line
    assert _tables(db_url) == []  # not even the history table


def test_lint_names_a_missing_file():
    line = _usage_line(run_cli("lint", "/nonexistent.py"), "chatdb lint")
    assert "'/nonexistent.py' does not exist" in line


def test_search_on_an_unmigrated_database_is_one_line(db_url):
    result = run_cli("search", "neurons", "--database", db_url)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("target: ") and len(lines) == 2, result.stderr
    assert lines[1] == (
        'error: the database has no chatdb schema (relation "messages" does not exist); '
        "migrate it first: chatdb migrate (chatdb handover for a legacy Alembic database)"
    )


def test_migrate_sql_applies_nothing_and_says_so(db_url):
    result = run_cli("migrate", "--sql", "--database", db_url)
    assert result.returncode == 0, result.stderr
    assert "CREATE TABLE" in result.stdout
    assert "applying" not in result.stderr
    assert _tables(db_url) == []


def test_demo_into_database_url_is_refused_without_a_terminal(db_url):
    result = run_cli("demo", env={"DATABASE_URL": db_url})
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "error: chatdb demo migrates and fills the database DATABASE_URL names; "
        "confirm with --yes, or name the database with --database"
    )
    assert _tables(db_url) == []
    confirmed = run_cli("demo", "--yes", env={"DATABASE_URL": db_url})
    assert confirmed.returncode == 0, confirmed.stderr
    assert "demo data: loaded" in confirmed.stdout


@pytest.mark.parametrize("answer, code", [("n", 1), ("y", 0)])
def test_demo_into_database_url_asks_on_a_terminal(db_url, answer, code):
    controller, terminal = pty.openpty()
    try:
        os.write(controller, f"{answer}\n".encode())
        result = subprocess.run(
            [sys.executable, "-m", "chatdb", "demo"],
            stdin=terminal,
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**os.environ, "DATABASE_URL": db_url},
            timeout=120,
            check=False,
        )
    finally:
        os.close(controller)
        os.close(terminal)
    assert result.returncode == code, result.stderr
    assert "load the demo conversations if empty? [y/N]" in result.stderr
    assert TEST_PASSWORD not in result.stderr and ":***@" in result.stderr
    if code:
        # The terminal, not stderr, echoes the answer that ends the question's line.
        assert result.stderr.endswith("[y/N]: error: not confirmed; nothing was changed\n")
        assert _tables(db_url) == []
    else:
        assert "demo data: loaded" in result.stdout


def test_help_takes_h_everywhere():
    assert run_cli("-h").stdout == run_cli("--help").stdout
    for command in ("migrate", "search", "db", "handover"):
        short = run_cli(command, "-h")
        assert short.returncode == 0 and short.stdout == run_cli(command, "--help").stdout
        assert short.stdout.startswith(f"Usage: chatdb {command}")


@pytest.mark.parametrize(
    "args",
    [
        ["migrate", "--no-such-option"],
        ["no-such-command"],
        ["threads"],  # a required option missing
        ["search"],  # a required argument missing
        ["status", "extra"],
        ["db", "nope"],
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args):
    command = "chatdb " + " ".join(a for a in args[:1] if a != "no-such-command")
    _usage_line(run_cli(*args), command.strip() if args[0] != "db" else "chatdb db")


def test_usage_errors_of_a_real_process_and_the_handover_script():
    real = run_cli("migrate", "--bogus", in_process=False)
    assert _usage_line(real, "chatdb migrate").startswith("error: no such option '--bogus'")
    script = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "alembic_handover.py"), "--bogus"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    _usage_line(script, "alembic_handover.py")


@pytest.mark.parametrize(
    "args",
    [
        ["-v", "status", "--database", UNREACHABLE],
        ["status", "-v", "--database", UNREACHABLE],
        ["status", "--database", UNREACHABLE, "--verbose"],
        ["search", "x", "-v", "--database", UNREACHABLE],
        ["db", "url", "-v"],
    ],
)
def test_verbose_anywhere_adds_the_traceback(args, monkeypatch):
    monkeypatch.setenv("CHATDB_EMBEDDED", "0")  # db url fails fast, starting nothing
    result = run_cli(*args, env={"CHATDB_EMBEDDED": "0"})
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: ")
    quiet = run_cli(*(a for a in args if a not in ("-v", "--verbose")))
    assert "Traceback" not in quiet.stderr
