"""Every shipped migration, cut off mid-statement at each table it touches, both ways, resumes.

A session holds ``SHARE UPDATE EXCLUSIVE`` on one table (writers go on; every
schema step on that table waits: an index build, a key swap, a validation,
a default). The migrator's statement on it then waits inside PostgreSQL, and
the test ends that backend (``pg_terminate_backend``): a connection lost
mid-statement, with the steps before it done. Or it stops the whole server
(a server of the test's own), and starts it again. The command must fail in
one line naming how to finish; running exactly that command must leave the
schema the migrations describe (``chatdb check`` clean), with the history
where it was asked to be.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import psycopg2
import pytest

from chatdb.migrate import loader
from chatdb.testing.admin import create_database
from chatdb.testing.servers import temporary_server
from tests.conftest import MIGRATIONS, REPO, run_cli
from tests.ops_support import applied_names

NAMES = loader.names(MIGRATIONS)
# The tables each migration's steps touch, in the order it touches them.
TOUCHED = {
    "002_database_defaults": ["threads", "messages", "tool_selection", "token_consumption"],
    "003_foreign_key_and_listing_indexes": [
        "messages", "tool_calls", "tool_selection", "token_consumption",
        "complexity_estimation", "threads",
    ],
    # A key swap waits for its own table and takes the referenced one NOWAIT.
    "004_cascade_deletes": [
        "messages", "tool_calls", "tool_selection", "token_consumption", "complexity_estimation",
    ],
    "005_scope_indexes": ["threads"],
}  # fmt: skip
# Rolled back, 004 swaps the children's keys first, each taking messages NOWAIT: a
# held messages is met by those NOWAIT retries, not waited for.
NOT_WAITED_FOR = {("004_cascade_deletes", "down", "messages")}
CASES = [
    (name, direction, table)
    for name, tables in TOUCHED.items()
    for direction in ("up", "down")
    for table in tables
    if (name, direction, table) not in NOT_WAITED_FOR
]


def _at(url: str, name: str) -> None:
    """Bring a database at head to ``name``."""
    if NAMES[-1] != name:
        result = run_cli("rollback", "--to", name, "--yes", "--database", url)
        assert result.returncode == 0, result.stderr


def _wait_blocked(url: str, table: str, deadline: float) -> int:
    """The pid of the migrator's backend waiting for a lock on ``table``."""
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            while time.monotonic() < deadline:
                cur.execute(
                    """
                    SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                    WHERE NOT l.granted AND l.relation = %s::regclass
                      AND a.datname = current_database()
                    """,
                    (table,),
                )
                row = cur.fetchone()
                if row:
                    return row[0]
                time.sleep(0.02)
    finally:
        conn.close()
    raise AssertionError(f"nothing waited for {table}")


def _terminate(url: str, pid: int) -> None:
    with psycopg2.connect(url) as killer, killer.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
    killer.close()


def _cut_off(
    url: str, args: list[str], table: str, cut: Callable[[int], None] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``chatdb ARGS`` while ``table`` is held; once it waits there, ``cut`` it off
    (by default, end its backend)."""
    holder = psycopg2.connect(url)
    try:
        with holder.cursor() as cur:
            cur.execute(f"LOCK TABLE {table} IN SHARE UPDATE EXCLUSIVE MODE")
        process = subprocess.Popen(
            [sys.executable, "-m", "chatdb", *args, "--lock-timeout", "60", "--database", url],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            pid = _wait_blocked(url, table, time.monotonic() + 60)
            (cut or (lambda pid: _terminate(url, pid)))(pid)
            out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
    finally:
        with contextlib.suppress(psycopg2.Error):
            holder.rollback()
        holder.close()
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def _printed_command(stderr: str, asked: list[str]) -> list[str]:
    """The command the error line says finishes the job."""
    line = stderr.strip().splitlines()[-1]
    assert line.startswith("error: ") and "Traceback" not in stderr, stderr
    named = re.search(r"`(chatdb [^`]+)` (?:completes it|finishes what was asked)", line)
    if named:
        return named.group(1).split()[1:]
    assert "running the same command again completes it" in line, line
    return asked


@pytest.mark.parametrize(
    "name,direction,table", CASES, ids=[f"{n[:3]}-{d}-{t}" for n, d, t in CASES]
)
def test_a_step_cut_off_mid_statement_resumes_as_printed(chatdb_url, name, direction, table):
    url = chatdb_url
    before = NAMES[NAMES.index(name) - 1]
    _at(url, before if direction == "up" else name)
    asked = ["migrate", "--to", name] if direction == "up" else ["rollback", "--to", before]
    result = _cut_off(url, asked, table)
    assert result.returncode == 1, result.stderr
    again = _printed_command(result.stderr, asked)
    finished = run_cli(*again, "--database", url)
    assert finished.returncode == 0, (again, finished.stderr)
    assert applied_names(url)[-1] == (name if direction == "up" else before)
    checked = run_cli("check", "--database", url)
    assert checked.returncode == 0, checked.stdout


@pytest.fixture(scope="module")
def own_server() -> Iterator:
    """A server this module may stop and start again."""
    with temporary_server("chatdb-stopped-", password="chatdb-stop-pw") as server:
        yield server


# The first table each migration touches, each way: a rollback walks them backwards.
STOPPED = [
    (name, direction, tables[0] if direction == "up" else tables[-1])
    for name, tables in TOUCHED.items()
    for direction in ("up", "down")
]


@pytest.mark.parametrize(
    "name,direction,table", STOPPED, ids=[f"{n[:3]}-{d}" for n, d, _ in STOPPED]
)
def test_a_step_cut_off_by_a_server_stop_resumes_as_printed(own_server, name, direction, table):
    url = create_database(own_server.url("postgres"), "chatdb_stopped")
    assert run_cli("migrate", "--database", url).returncode == 0
    before = NAMES[NAMES.index(name) - 1]
    _at(url, before if direction == "up" else name)
    asked = ["migrate", "--to", name] if direction == "up" else ["rollback", "--to", before]

    def stop_and_start(_pid: int) -> None:
        own_server.stop()
        own_server.ensure_running()

    result = _cut_off(url, asked, table, stop_and_start)
    assert result.returncode == 1, result.stderr
    again = _printed_command(result.stderr, asked)
    finished = run_cli(*again, "--database", url)
    assert finished.returncode == 0, (again, finished.stderr)
    assert applied_names(url)[-1] == (name if direction == "up" else before)
    assert run_cli("check", "--database", url).returncode == 0
