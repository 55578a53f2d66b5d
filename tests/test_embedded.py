"""The embedded default: a local PostgreSQL chatdb starts itself, root or not."""

from __future__ import annotations

import shutil
import tempfile

import pytest

from tests.conftest import run_cli


@pytest.fixture
def home():
    path = tempfile.mkdtemp(prefix="chatdb-home-")
    yield path
    run_cli("db", "stop", env={"CHATDB_HOME": path})
    shutil.rmtree(path, ignore_errors=True)


def test_no_url_means_embedded_server_started_on_demand_and_persistent(home):
    env = {"CHATDB_HOME": home}
    assert "stopped" in run_cli("db", "status", env=env).stdout

    migrated = run_cli("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    status = run_cli("status", env=env)
    assert "[x] 001_baseline" in status.stdout
    assert home in status.stdout.replace("%2F", "/")
    assert "running (pid" in run_cli("db", "status", env=env).stdout

    assert run_cli("db", "stop", env=env).stdout.strip() == "stopped"
    assert "stopped" in run_cli("db", "status", env=env).stdout
    # Data persists: after a restart on demand nothing is pending.
    again = run_cli("status", env=env)
    assert "pending (0)" in again.stdout and "[x] 001_baseline" in again.stdout


def test_db_url_and_start(home):
    env = {"CHATDB_HOME": home}
    started = run_cli("db", "start", env=env)
    assert started.returncode == 0, started.stderr
    url = run_cli("db", "url", env=env).stdout.strip()
    assert url.startswith("postgresql://postgres@/chatdb?host=")
    assert run_cli("status", "--database", url, env=env).returncode == 0


def test_unwritable_home_gives_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run_cli("status", env={"CHATDB_HOME": str(blocker / "home")})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("target: database chatdb on the embedded")
    assert lines[1].startswith("error: cannot create the embedded database directory")
