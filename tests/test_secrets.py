"""No password is ever printed: every command, fed malformed URLs carrying a marker password.

The marker sits in every place a mis-parse could move it to (the host, the
port, the database name, the query string), and each command runs with and
without ``-v``: with ``-v`` a traceback is allowed, the marker is not, so
no exception chatdb raises may carry it either.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from click.testing import CliRunner

from chatdb.cli.main import cli
from chatdb.db.urls import mask_password
from tests.conftest import REPO, run_cli
from tests.ops_support import one_line_error

MARKER = "MaRkEr7q"
MALFORMED = (
    f"postgresql://postgres:{MARKER}%zz@127.0.0.1:1/db",
    f"postgresql://postgres:{MARKER}%@127.0.0.1:1/db",
    f"postgresql://postgres:p@ss:{MARKER}@127.0.0.1:1/db",
    f"postgresql://postgres:p@{MARKER}@127.0.0.1:1/db",
    f"postgresql://postgres:Hunter2/{MARKER}@127.0.0.1:1/db",
    f"postgresql://postgres:{MARKER}/secret@127.0.0.1:1/db",
    f"postgresql://postgres::{MARKER}@127.0.0.1:1/db",
    f"postgresql://postgres:{MARKER}@[::1:5432/db",
    f"postgresql://postgres:{MARKER}@127.0.0.1:notaport/db",
    f"postgresql://postgres@127.0.0.1:1/db?PASSWORD={MARKER}",
    f"postgresql://postgres@127.0.0.1:1/db?pass%77ord={MARKER}",
    f"postgresql://postgres@127.0.0.1:1/db?password={MARKER}&bogus=1",
    f"postgresql://postgres:pa#{MARKER}@127.0.0.1:1/db",
    f"postgresql://postgres:pa?{MARKER}@127.0.0.1:1/db",
    f"postgresql://postgres:{MARKER}@127.0.0.1:1/db?sslmode=bogus",
    f"mysql://root:{MARKER}@127.0.0.1/db",
    f"host=127.0.0.1 port=1 user=u password={MARKER} dbname=x",
    f"host=/tmp user=u password={MARKER} dbname='x",
    f"user=u password='{MARKER}",
)
ENTRY_POINTS = {
    "python -m chatdb": [sys.executable, "-m", "chatdb", "{v}", "status", "--database", "{url}"],
    "write-snapshots": [
        sys.executable,
        "-m",
        "chatdb",
        "{v}",
        "write-snapshots",
        "--database",
        "{url}",
    ],
    "alembic_handover.py": [
        sys.executable,
        str(REPO / "scripts" / "alembic_handover.py"),
        "{v}",
        "--database",
        "{url}",
    ],
    "pw_migrate": [
        str(Path(sys.executable).parent / "pw_migrate"),
        "migrate",
        "{v}",
        "--database",
        "{url}",
    ],
}


def _urls(server_url: str) -> list[str]:
    """The malformed ones, plus a well-formed URL of the test server with a wrong password."""
    parts = urlsplit(server_url)
    user = parts.netloc.rpartition("@")[0].split(":", 1)[0]
    host = parts.netloc.rpartition("@")[2]
    return [*MALFORMED, urlunsplit(parts._replace(netloc=f"{user}:{MARKER}@{host}"))]


def _commands() -> list[str]:
    return sorted(
        name
        for name, command in cli.commands.items()
        if any(param.name == "database" for param in command.params)
    )


# Arguments some commands need before they look at --database.
REQUIRED = {
    "create": ["probe"],
    "search": ["neuron"],
    "threads": ["--user", "00000000-0000-4000-8000-000000000000"],
}


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
@pytest.mark.parametrize("command", _commands())
def test_every_chatdb_command_keeps_the_password(server_url, command, verbose):
    assert MARKER not in server_url
    runner = CliRunner()
    for url in _urls(server_url):
        args = [*(["-v"] if verbose else []), command, *REQUIRED.get(command, [])]
        result = runner.invoke(cli, [*args, "--database", url])
        output = result.stdout + result.stderr
        assert result.exit_code == 1, (url, output)
        assert MARKER not in output, (command, url, output)
        assert ("Traceback" in result.stderr) is verbose, output
        assert any(
            f"error: {failure}" in output
            for failure in (
                "malformed database URL",
                "cannot connect",
                "cannot create a scratch database",  # chatdb create's shadow database
            )
        ), output


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_every_entry_point_keeps_the_password(server_url, entry, verbose):
    for url in _urls(server_url):
        argv = [
            {"{url}": url, "{v}": "-v"}.get(arg, arg)
            for arg in ENTRY_POINTS[entry]
            if arg != "{v}" or verbose
        ]
        result = _run(argv)
        assert result.returncode != 0, (url, result.stdout)
        assert MARKER not in result.stdout + result.stderr, (entry, url, result.stderr)
        assert "error: " in result.stderr, result.stderr


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=env, timeout=120)


def test_write_snapshots_on_a_non_empty_database_is_one_masked_line(db_url):
    assert run_cli("migrate", "--database", db_url).returncode == 0
    result = _run([sys.executable, "-m", "chatdb", "write-snapshots", "--database", db_url])
    line = one_line_error(result, db_url)
    assert f"{mask_password(db_url)} is not empty" in line


@pytest.mark.parametrize(
    "url,shown",
    [
        ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql:///db?host=/tmp&password=x", "postgresql:///db?host=/tmp&password=***"),
        (
            "postgresql://u@h/db?pass%77ord=x&sslmode=require",
            "postgresql://u@h/db?pass%77ord=***&sslmode=require",
        ),
        ("postgresql://u:pa#ss@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:p@ss:w0rd@h/db", "postgresql://***"),
        ("postgresql://u:Hunter2/secret@h/db", "postgresql://***"),
        ("postgresql://u:secret%pw@h/db", "postgresql://***"),
        ("postgresql://u@h/db?PASSWORD=secret", "postgresql://***"),
        ("host=/tmp user=u password=s3cret dbname=x", "***"),
    ],
)
def test_mask_password_follows_libpq_and_hides_what_it_cannot_parse(url, shown):
    assert mask_password(url) == shown
