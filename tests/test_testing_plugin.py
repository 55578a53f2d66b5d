"""chatdb's pytest plugin, used as an application would: from a project of its own."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest

from tests.conftest import REPO

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


# -- passwords never show; the README's example runs as written ------------------------------

FAILING_TEST = textwrap.dedent(
    """
    def test_fails_with_every_url_fixture(chatdb_url, chatdb_server_url, chatdb_new_database):
        other = chatdb_new_database()
        assert (chatdb_url, chatdb_server_url, other) == ()
    """
)


def _run(project: Path, source: str, server: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATDB_", "PYTEST_"))}
    env["CHATDB_TEST_DATABASE_URL"] = server
    project.mkdir(exist_ok=True)
    (project / "test_app.py").write_text(source)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args, "test_app.py"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _with_marker_password(server_url: str) -> tuple[str, str]:
    """``server_url`` with a password to look for: its own, else a marker (ignored by trust)."""
    parsed = urlsplit(server_url)
    if parsed.password:
        return server_url, parsed.password
    marker = "marker-pw-5e1f"
    netloc = f"{parsed.username or 'postgres'}:{marker}@{parsed.netloc.rsplit('@', 1)[-1]}"
    return urlunsplit(parsed._replace(netloc=netloc)), marker


@pytest.mark.parametrize("traceback", ["--tb=long", "--showlocals"])
def test_a_failing_test_never_prints_the_password(tmp_path: Path, server_url: str, traceback):
    url, password = _with_marker_password(server_url)
    result = _run(tmp_path / "app", FAILING_TEST, url, traceback)
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "1 failed" in output, output
    assert "***" in output and "chatdb_test_" in output  # the URLs are there, masked
    assert password not in output


def test_an_unreachable_server_fails_in_one_masked_line(tmp_path: Path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://postgres:marker-pw-0d9c@127.0.0.1:{port}/postgres?connect_timeout=5"
    result = _run(tmp_path / "app", FAILING_TEST, url, "--tb=long", "--showlocals")
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "1 error" in output, output
    assert "marker-pw-0d9c" not in output
    assert "chatdb plugin, creating the template database: cannot connect to" in output
    assert "***@127.0.0.1" in output
    assert "Traceback" not in output and "During handling" not in output


def test_the_readme_plugin_example_runs_as_written(tmp_path: Path, server_url: str):
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Testing an application", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    result = _run(tmp_path / "app", example, server_url, "-q")
    assert result.returncode == 0 and "1 passed" in result.stdout, result.stdout + result.stderr
