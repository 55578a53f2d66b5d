"""A pre-handover backup restored over a handed-over database, and the one way out.

The guide's way back after a handover is ``pg_restore --clean --if-exists``
of the dump taken before it. That dump has no chatdb history table, so
``--clean`` leaves it: the history says the migrations ran, the schema is the
legacy head. Every command must recognise that state, and
``chatdb handover --forget-history`` must get out of it.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from chatdb.legacy.handover import BASELINE, LEGACY_HEAD
from chatdb.migrate import loader
from tests.conftest import MIGRATIONS, REPO, run_cli
from tests.handover_support import execute, fingerprint, legacy_with_rows
from tests.ops_support import applied_names, one_line_error, state

HEAD = loader.names(MIGRATIONS)[-1]
WAY_OUT = "`chatdb handover --forget-history` drops that history"


def _tool(tools: Callable[[str], Path], name: str, *args: str) -> None:
    result = subprocess.run([str(tools(name)), *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def restored(new_database, tools, tmp_path) -> tuple[str, dict]:
    """A legacy database handed over, then restored from its pre-handover dump."""
    url = legacy_with_rows(new_database())
    rows = fingerprint(url)
    dump = str(tmp_path / "chat-before-handover.dump")
    _tool(tools, "pg_dump", "--format=custom", f"--file={dump}", f"--dbname={url}")
    assert run_cli("handover", "--database", url).returncode == 0
    execute(url, "INSERT INTO threads (thread_id, title, user_id) VALUES "
                 "(gen_random_uuid(), 'after the handover', gen_random_uuid())")  # fmt: skip
    _tool(tools, "pg_restore", "--clean", "--if-exists", f"--dbname={url}", dump)
    assert applied_names(url)[-1] == HEAD, "the history table survived the restore"
    return url, rows


def test_every_command_recognises_a_restored_backup(restored):
    url, _ = restored
    before = state(url)
    status = run_cli("status", "--database", url)
    assert status.returncode == 0, status.stderr
    assert f"drift: DRIFT: the history says {HEAD} is applied, but the schema is exactly " in (
        status.stdout
    )
    assert WAY_OUT in status.stdout
    checked = run_cli("check", "--database", url)
    assert checked.returncode == 1
    verdict = checked.stdout.splitlines()[1]
    assert verdict.startswith("DRIFT: the history says") and WAY_OUT in verdict
    for command in (["migrate"], ["rollback"], ["migrate", "--ignore-drift"]):
        line = one_line_error(run_cli(*command, "--database", url), url)
        assert "refusing to" in line and WAY_OUT in line, command
    for handover in ([], ["--dry-run"], ["--undo"]):
        line = one_line_error(run_cli("handover", *handover, "--database", url), url)
        assert "cannot hand" in line and WAY_OUT in line, handover
    assert state(url) == before


def test_forget_history_then_handover_again(restored):
    url, rows = restored
    dry = run_cli("handover", "--forget-history", "--dry-run", "--database", url)
    assert dry.returncode == 0, dry.stderr
    assert "dry run, nothing written" in dry.stdout
    assert applied_names(url)[-1] == HEAD
    forgot = run_cli("handover", "--forget-history", "--database", url)
    assert forgot.returncode == 0, forgot.stderr
    assert f"legacy database at {LEGACY_HEAD}: `chatdb handover` adopts it again" in forgot.stdout
    assert applied_names(url) == []
    assert fingerprint(url) == rows, "the restored rows, untouched"
    again = run_cli("handover", "--database", url)
    assert again.returncode == 0, again.stderr
    assert applied_names(url)[0] == BASELINE and applied_names(url)[-1] == HEAD
    assert run_cli("check", "--database", url).returncode == 0


def test_forget_history_is_only_for_the_legacy_head(new_database):
    url = legacy_with_rows(new_database())
    assert run_cli("handover", "--database", url).returncode == 0
    before = state(url)
    line = one_line_error(run_cli("handover", "--forget-history", "--database", url), url)
    assert "its schema is not exactly the legacy head" in line
    assert state(url) == before

    legacy = legacy_with_rows(new_database())
    line = one_line_error(run_cli("handover", "--forget-history", "--database", legacy), legacy)
    assert "has no chatdb history; there is nothing to forget" in line

    adopted = legacy_with_rows(new_database())
    assert run_cli("handover", "--baseline-only", "--database", adopted).returncode == 0
    execute(adopted, "UPDATE alembic_version SET version_num = 'cd5a73ea91db'")
    before = state(adopted)
    line = one_line_error(run_cli("handover", "--forget-history", "--database", adopted), adopted)
    assert f"alembic_version holds cd5a73ea91db, not {LEGACY_HEAD}" in line
    assert state(adopted) == before
    line = one_line_error(run_cli("handover", "--forget-history", "--undo", "--database", url), url)
    assert "--undo and --forget-history cannot be combined" in line


def _guide_restore_commands() -> list[list[str]]:
    """The shell lines of the guide's "Restore the backup" step."""
    text = (REPO / "docs" / "MIGRATION_GUIDE.md").read_text()
    block = text.split("**Restore the backup**", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    return [shlex.split(line) for line in block.strip().splitlines()]


def test_the_guides_restore_leaves_a_legacy_database(new_database, tools, tmp_path):
    url = legacy_with_rows(new_database())
    rows = fingerprint(url)
    dump = tmp_path / "chat-before-handover.dump"
    _tool(tools, "pg_dump", "--format=custom", f"--file={dump}", f"--dbname={url}")
    assert run_cli("handover", "--database", url).returncode == 0
    commands = _guide_restore_commands()
    assert [command[0] for command in commands] == ["psql", "pg_restore"]
    for name, *args in commands:
        args = [{"$DATABASE_URL": url, dump.name: str(dump)}.get(arg, arg) for arg in args]
        _tool(tools, name, *args)
    assert applied_names(url) == [] and fingerprint(url) == rows
    checked = run_cli("check", "--database", url)
    assert "its schema is the legacy head's: `chatdb handover` adopts it" in checked.stdout
