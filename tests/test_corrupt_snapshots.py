"""A damaged schema snapshot is one line naming the file and the repair, whatever the command."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from chatdb.catalog import snapshots
from tests.conftest import HEAD, MIGRATIONS, run_cli

DAMAGE = {
    "not JSON": ('{"enums": {', "not JSON: "),
    "a missing key": ('{"tables": {}}', "no 'enums' key"),
    "not a catalog": ("[1, 2, 3]", "not a catalog"),
    "not text": (b"\xff\xfe\x00garbage", "not UTF-8 text"),
}


@pytest.fixture(params=list(DAMAGE), ids=list(DAMAGE))
def damaged(request, tmp_path) -> tuple[Path, Path, str]:
    """A copy of the migrations whose head snapshot is damaged; its path; the fault expected."""
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, directory)
    content, fault = DAMAGE[request.param]
    path = snapshots.path_for(directory, HEAD)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return directory, path, fault


def _the_line(text: str, path: Path, fault: str) -> str:
    lines = [line for line in text.splitlines() if str(path) in line]
    assert len(lines) == 1, text
    _names_fault_and_repair(lines[0], fault)
    return lines[0]


def _names_fault_and_repair(line: str, fault: str) -> None:
    assert fault in line and "restore it from version control" in line, line
    assert "chatdb write-snapshots" in line


@pytest.mark.parametrize(
    "command, code",
    [
        (["check"], 1),
        (["migrate"], 1),  # the drift check needs it: no check would be worse than stopping
        (["migrate", "--sql"], 1),
        (["rollback", "--sql"], 1),
    ],
)
def test_every_command_names_the_damaged_snapshot(chatdb_url, damaged, command, code):
    """The file, its fault and the repair, in place of JSONDecodeError or KeyError: 'enums'."""
    directory, path, fault = damaged
    result = run_cli(*command, "--database", chatdb_url, "--directory", str(directory))
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr and "Error:" not in result.stderr
    said = [line for line in result.stderr.splitlines() if str(path) in line]
    assert said, result.stderr
    for line in said:
        _names_fault_and_repair(line, fault)
    if code:
        assert result.stderr.splitlines()[-1].startswith("error: schema snapshot ")


def test_status_reports_the_damaged_snapshot_as_its_drift_verdict(chatdb_url, damaged):
    directory, path, fault = damaged
    result = run_cli("status", "--database", chatdb_url, "--directory", str(directory))
    assert result.returncode == 0, result.stderr
    assert f"[x] {HEAD}" in result.stdout  # the rest of the status is still there
    assert _the_line(result.stdout, path, fault).startswith("drift: unknown: schema snapshot ")


def test_lint_of_a_file_names_the_damaged_snapshot(damaged):
    directory, path, fault = damaged
    result = run_cli("lint", str(directory / f"{HEAD}.py"))
    assert result.returncode == 1
    assert result.stderr.startswith("error: schema snapshot ")
    _the_line(result.stderr, path, fault)


def test_a_rollback_stops_on_a_damaged_snapshot_instead_of_skipping_the_drift_check(
    chatdb_url, damaged
):
    directory, path, fault = damaged
    result = run_cli("rollback", "--yes", "--directory", str(directory), "--database", chatdb_url)
    assert result.returncode == 1
    assert "not checked for drift" not in result.stderr
    _the_line(result.stderr, path, fault)
    status = run_cli("status", "--json", "--database", chatdb_url)
    assert HEAD not in status.stdout.split('"pending"')[1].split("]")[0], "nothing rolled back"
