"""The target is never a surprise: every command names its database first, on stderr.

``CHATDB_EMBEDDED=0`` turns the embedded fallback off: with no URL, a command
fails in one line before starting a server or creating a directory.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from chatdb.db import target
from chatdb.errors import ChatdbError
from tests.conftest import run_cli

NO_URL = (
    "error: no database given: set DATABASE_URL or pass --database "
    "(CHATDB_EMBEDDED=0 turns the embedded local server off)"
)
# Every command that reads or writes a database.
COMMANDS = [
    ("migrate",),
    ("migrate", "--sql"),
    ("rollback", "--sql"),
    ("status",),
    ("check",),
    ("handover", "--dry-run"),
    ("demo",),
    ("search", "neuron"),
    ("threads", "--user", "00000000-0000-0000-0000-000000000000"),
    ("usage",),
    ("reindex-search",),
]


def _expected(url: str, source: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or parse_qs(parts.query)["host"][0]
    where = f"{host}:{parts.port or 5432}"
    return f"target: database {parts.path[1:]} on {where} as {parts.username} (from {source})"


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: " ".join(args[:2]))
def test_every_command_names_its_target_first(db_url, args):
    result = run_cli(*args, "--database", db_url)
    assert result.stderr.splitlines()[0] == _expected(db_url, "--database"), result.stderr
    password = urlsplit(db_url).password
    assert password is None or password not in result.stdout + result.stderr


def test_the_target_line_keeps_json_output_clean(db_url):
    assert run_cli("migrate", "--database", db_url).returncode == 0
    result = run_cli("status", "--json", env={"DATABASE_URL": db_url})
    assert result.stderr.splitlines()[0] == _expected(db_url, "DATABASE_URL")
    assert json.loads(result.stdout)["pending"] == []
    hits = run_cli("search", "neuron", "--json", env={"DATABASE_URL": db_url})
    assert json.loads(hits.stdout) == []


def test_the_embedded_server_is_named_by_its_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("CHATDB_HOME", str(tmp_path / "home"))
    chosen = target.choose(None)
    assert chosen.describe() == (
        f"target: database chatdb on the embedded local server at {tmp_path / 'home'} "
        "(no --database or DATABASE_URL given)"
    )
    assert not (tmp_path / "home").exists()  # named, not started


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: " ".join(args[:2]))
def test_no_embedded_fallback_fails_in_one_line_creating_nothing(args, tmp_path):
    home = tmp_path / "home"
    result = run_cli(*args, env={"CHATDB_EMBEDDED": "0", "CHATDB_HOME": str(home)})
    assert result.returncode == 1
    assert result.stderr.splitlines() == [NO_URL]
    assert not home.exists()


def test_no_embedded_fallback_for_the_library_and_pw_migrate(monkeypatch, tmp_path):
    monkeypatch.setenv("CHATDB_EMBEDDED", "0")
    with pytest.raises(ChatdbError, match="no database given"):
        target.resolve_url(None)
    home = tmp_path / "home"
    result = run_cli(
        "list", program="pw_migrate", env={"CHATDB_EMBEDDED": "0", "CHATDB_HOME": str(home)}
    )
    assert result.returncode == 1 and result.stderr.splitlines() == [NO_URL]
    assert not home.exists()


def test_an_explicit_url_needs_no_embedded_server(db_url, monkeypatch):
    monkeypatch.setenv("CHATDB_EMBEDDED", "0")
    assert target.resolve_url(db_url) == db_url


def test_a_misspelt_switch_is_refused(tmp_path):
    result = run_cli("status", env={"CHATDB_EMBEDDED": "nope", "CHATDB_HOME": str(tmp_path)})
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: CHATDB_EMBEDDED=nope: expected 0 (no embedded server) or 1"
    ]
