"""chatdb's pytest plugin, used as an application would: from a project of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg2
import pytest

APPLICATION_TEST = textwrap.dedent(
    """
    import chatdb


    def test_a_thread_and_its_message_round_trip(chatdb_database):
        thread = chatdb.create_thread("7c9e6679-7425-40de-944b-e07fc1f90ae7", "support")
        chatdb.add_message(thread.thread_id, chatdb.Entity.USER, {"content": "hello"})
        [message] = chatdb.list_messages(thread.thread_id)
        assert message.content == {"content": "hello"}
        assert [t.title for t in chatdb.list_threads(thread.user_id)] == ["support"]


    def test_each_test_starts_from_an_empty_database_at_head(chatdb_database, chatdb_url):
        assert chatdb.Thread.select().count() == 0
        assert chatdb_database.table_exists("messages")
        assert chatdb_url.split("?")[0].rsplit("/", 1)[1].startswith("chatdb_test_")
    """
)


def _run_project(project: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    (project / "test_app.py").write_text(APPLICATION_TEST)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_app.py"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.parametrize("where", ["its own throwaway server", "CHATDB_TEST_DATABASE_URL"])
def test_an_application_suite_gets_a_migrated_database_per_test(
    tmp_path: Path, server_url: str, where: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATDB_", "PYTEST_"))}
    if where == "CHATDB_TEST_DATABASE_URL":
        env["CHATDB_TEST_DATABASE_URL"] = server_url
    project = tmp_path / "app"
    project.mkdir()
    before = _databases(server_url)

    result = _run_project(project, env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
    assert _databases(server_url) == before  # nothing left behind on a shared server


def _databases(server_url: str) -> set[str]:
    conn = psycopg2.connect(server_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database WHERE datname LIKE 'chatdb%'")
            return {name for (name,) in cur.fetchall()}
    finally:
        conn.close()
