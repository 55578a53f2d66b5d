"""chatdb's pytest plugin: a real PostgreSQL, and a database at chatdb's head for each test.

Installed with chatdb (entry point ``pytest11``), so any project whose test
environment has chatdb and pytest gets these fixtures:

- ``chatdb_server_url`` (session): the admin URL of the server the tests use:
  ``CHATDB_TEST_DATABASE_URL`` if set (its user may create databases), else a
  throwaway embedded server in a temporary directory, removed at the end;
- ``chatdb_new_database``: a factory of fresh, empty databases (URLs), all
  dropped after the test;
- ``chatdb_url``: the URL of a database of this test's own at chatdb's head;
- ``chatdb_database``: that database open (a ``chatdb.Database``), current for
  the test (``chatdb.create_thread`` and friends, and the models, use it);
  dropped after the test.

Migrating takes a while, copying a database does not: the migrations run
once per session into a template database, and each test gets
``CREATE DATABASE ... TEMPLATE`` of it. The migrations are those of the
installed chatdb (``chatdb migrations-dir``); the ``chatdb_migrations`` ini
option names another directory (relative to the rootdir). ``-p no:chatdb`` turns the plugin off.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chatdb.api.connection import connect
from chatdb.api.database import Database
from chatdb.db.routing import using
from chatdb.migrate.executor import Runner
from chatdb.migrate.location import migrations_dir
from chatdb.testing.admin import create_database, drop_database
from chatdb.testing.servers import temporary_server

SERVER_ENV = "CHATDB_TEST_DATABASE_URL"
MIGRATIONS_INI = "chatdb_migrations"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        MIGRATIONS_INI,
        "Migrations directory for the chatdb_url/chatdb_database fixtures (default: chatdb's).",
        default="",
    )


@pytest.fixture(scope="session")
def chatdb_server_password() -> str | None:
    """Override to return a password: the throwaway server then requires it (SCRAM)."""
    return None


@pytest.fixture(scope="session")
def chatdb_server_url(chatdb_server_password: str | None) -> Iterator[str]:
    """Admin URL of the PostgreSQL server: ``CHATDB_TEST_DATABASE_URL``, else a throwaway one."""
    external = os.environ.get(SERVER_ENV)
    if external:
        yield external
        return
    with temporary_server("chatdb-pytest-", password=chatdb_server_password) as server:
        yield server.url("postgres")


@pytest.fixture
def chatdb_new_database(chatdb_server_url: str) -> Iterator[Callable[..., str]]:
    """A factory of fresh databases (``template`` names a database to copy); dropped after."""
    created: list[str] = []

    def make(template: str = "template0") -> str:
        url = create_database(chatdb_server_url, "chatdb_test", template)
        created.append(url)
        return url

    yield make
    for url in created:
        drop_database(chatdb_server_url, url)


@pytest.fixture(scope="session")
def chatdb_migrations(pytestconfig: pytest.Config) -> Path:
    """The migrations the per-test databases are at the head of."""
    configured = pytestconfig.getini(MIGRATIONS_INI)
    return pytestconfig.rootpath / configured if configured else migrations_dir()


@pytest.fixture(scope="session")
def chatdb_template(chatdb_server_url: str, chatdb_migrations: Path) -> Iterator[str]:
    """The name of a database migrated to head once per session, which tests copy."""
    url = create_database(chatdb_server_url, "chatdb_template")
    try:
        with Runner(url, chatdb_migrations) as runner:
            runner.migrate()
        yield str(runner.database.database)
    finally:
        drop_database(chatdb_server_url, url)


@pytest.fixture
def chatdb_url(chatdb_new_database: Callable[..., str], chatdb_template: str) -> str:
    """URL of a database of this test's own at chatdb's head; dropped after the test."""
    return chatdb_new_database(template=chatdb_template)


@pytest.fixture
def chatdb_database(chatdb_url: str) -> Iterator[Database]:
    """This test's database at head, open, and current for the test: ``chatdb.create_thread``
    and friends, and the models, use it."""
    database = connect(chatdb_url)
    try:
        with using(database):
            yield database
    finally:
        database.close_all()
