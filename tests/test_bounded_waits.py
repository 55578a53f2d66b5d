"""Bounded waits: a server that accepts and never answers neither hangs a command nor Ctrl-C.

The black hole is a loopback socket that accepts connections, reads what
the client sends, and never answers: libpq waits for its reply inside C.
Every wait in these tests is bounded by a timeout far above the expected
one, so a regression fails instead of hanging the suite.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import peewee as pw
import pytest

from chatdb.db.connect import DEFAULT_CONNECT_TIMEOUT, bounded, make_database
from chatdb.db.urls import connect_params
from tests.conftest import REPO, run_cli


@dataclass
class BlackHole:
    """A listening loopback socket whose clients are accepted and never answered."""

    listener: socket.socket
    reached: threading.Event = field(default_factory=threading.Event)
    held: list[socket.socket] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.listener.getsockname()[1]

    def url(self, query: str = "") -> str:
        return f"postgresql://u:s3cret@127.0.0.1:{self.port}/db{query}"

    def serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed at the end of the test
                return
            self.held.append(client)
            client.recv(64)  # libpq's first packet: it now waits for the answer
            self.reached.set()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    hole = BlackHole(listener)
    threading.Thread(target=hole.serve, daemon=True).start()
    yield hole
    listener.close()
    for client in hole.held:
        client.close()


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith("target: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_the_connect_timeout_has_a_default_the_url_or_environment_overrides(monkeypatch):
    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    url = "postgresql://u@127.0.0.1:5432/db"
    assert bounded(connect_params(url))["connect_timeout"] == str(DEFAULT_CONNECT_TIMEOUT)
    assert bounded(connect_params(url + "?connect_timeout=3"))["connect_timeout"] == "3"
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "7")  # libpq reads it when the URL is silent
    assert "connect_timeout" not in bounded(connect_params(url))


def test_a_server_that_never_answers_fails_after_the_default_timeout(black_hole):
    """Without a timeout in the URL, the command used to wait for ever."""
    result = run_cli("status", "--database", black_hole.url())
    line = _one_error_line(result)
    assert line.startswith(
        f"error: cannot connect to postgresql://u:***@127.0.0.1:{black_hole.port}"
    )
    assert "timeout expired" in line and "?connect_timeout=SECONDS" in line
    assert "s3cret" not in result.stderr
    assert black_hole.reached.is_set()


def test_the_url_sets_another_connect_timeout(black_hole):
    """libpq's shortest timeout (2 s) is well inside the bound; the default would pass it."""
    url = black_hole.url("?connect_timeout=2")
    result = subprocess.run(
        [sys.executable, "-m", "chatdb", "status", "--database", url],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=DEFAULT_CONNECT_TIMEOUT - 1,
        check=False,
    )
    assert "timeout expired" in _one_error_line(result)


# As in test_embedded_hostile: a suite started in the background may inherit
# SIGINT ignored; give the child the handler it has when started from a terminal.
CTRL_C_CHILD = textwrap.dedent(
    """
    import signal, sys
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.argv = ["chatdb", *sys.argv[1:]]
    from chatdb.cli import run
    run()
    """
)


@pytest.mark.parametrize("command", [["status"], ["search", "neurons"], ["migrate"]])
def test_ctrl_c_while_connecting_is_answered(black_hole, command):
    """The interrupt lands while libpq waits for the black hole's answer."""
    url = black_hole.url("?connect_timeout=600")  # only Ctrl-C can end this wait in time
    child = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_CHILD, *command, "--database", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert black_hole.reached.wait(60), "the command never reached the server"
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 130, err
    assert err.splitlines()[-1] == "interrupted"
    assert "Traceback" not in err and out == ""


def _waiting_on_a_lock(db: pw.PostgresqlDatabase) -> bool:
    waiting = db.execute_sql(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
        " WHERE NOT l.granted AND d.datname = current_database()"
    )
    return waiting.fetchone()[0] > 0


def test_ctrl_c_during_a_query_cancels_it(chatdb_url):
    """The query waits for a lock the test holds: it used to wait as long as the lock was held."""
    command = ["threads", "--user", "00000000-0000-4000-8000-000000000000"]
    holder = make_database(chatdb_url)
    holder.connect()
    watcher = make_database(chatdb_url)
    watcher.connect()
    holder.execute_sql("BEGIN")
    holder.execute_sql("LOCK TABLE threads, messages IN ACCESS EXCLUSIVE MODE")
    child = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_CHILD, *command, "--database", chatdb_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        for _ in range(600):  # up to 60 s for the child to start and queue behind the lock
            if _waiting_on_a_lock(watcher) or child.poll() is not None:
                break
            time.sleep(0.1)
        assert _waiting_on_a_lock(watcher), child.communicate(timeout=60)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
        child.wait()
        holder.execute_sql("ROLLBACK")
        holder.close()
    assert child.returncode == 130, err
    assert err.splitlines()[-1] == "interrupted" and "Traceback" not in err
    assert not _waiting_on_a_lock(watcher)
    watcher.close()
