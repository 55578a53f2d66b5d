"""A real hot standby (streaming replica made with pg_basebackup) is refused as read-only."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from chatdb.db.embedded import EmbeddedServer
from tests.conftest import run_cli
from tests.ops_support import one_line_error, reachable_dir, state


def _as_server_user(server: EmbeddedServer, *args: str) -> None:
    """Run a server tool as the user the server runs as (root cannot own a cluster)."""
    kwargs: dict[str, object] = {}
    if server.service_user is not None:
        user = pwd.getpwnam(server.service_user)
        kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    subprocess.run(args, check=True, capture_output=True, cwd="/", timeout=120, **kwargs)


@pytest.fixture(scope="module")
def primary_and_standby() -> Iterator[tuple[EmbeddedServer, EmbeddedServer]]:
    home = reachable_dir("chatdb-standby-")
    primary = EmbeddedServer(home / "primary").ensure_running()
    standby = EmbeddedServer(home / "standby")
    standby.home.mkdir(mode=0o755)
    standby.data_dir.mkdir(mode=0o700)
    if standby.service_user is not None:
        user = pwd.getpwnam(standby.service_user)
        os.chown(standby.data_dir, user.pw_uid, user.pw_gid)
    try:
        _as_server_user(
            primary,
            str(primary.tool("pg_basebackup")),
            "--pgdata",
            str(standby.data_dir),
            "--host",
            str(primary.data_dir),
            "--username",
            "postgres",
            "--wal-method",
            "stream",
            "--write-recovery-conf",
            "--checkpoint=fast",
            "--no-sync",
        )
        # The primary's socket lives in its data directory: its lock file came along.
        (standby.data_dir / ".s.PGSQL.5432.lock").unlink(missing_ok=True)
        standby.ensure_running()
        yield primary, standby
    finally:
        standby.stop()
        primary.stop()
        shutil.rmtree(home, ignore_errors=True)


def test_a_streaming_replica_is_refused_before_anything(primary_and_standby):
    primary, standby = primary_and_standby
    url = standby.url()
    before = state(url)
    line = one_line_error(run_cli("migrate", "--database", url), url)
    assert "is a read-only hot standby (a replica); nothing was tried" in line
    assert "point --database or DATABASE_URL at the primary" in line
    line = one_line_error(run_cli("rollback", "--database", url), url)
    assert "hot standby" in line
    assert state(url) == before
    assert state(primary.url()) == before  # nothing reached the primary either


def test_the_primary_of_that_replica_migrates(primary_and_standby):
    """The refusal is about the standby, not the cluster: its primary takes the migrations."""
    primary, _ = primary_and_standby
    result = run_cli("migrate", "--database", primary.url())
    assert result.returncode == 0, result.stderr
