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

A password never shows in a test report: the URL fixtures are :class:`SecretUrl`
strings, whose ``repr`` (what pytest prints for arguments, locals and
assertions) masks it, and a server the fixtures cannot reach or use fails the
test with one line naming the masked URL, no traceback.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import peewee as pw
import psycopg2
import pytest

from chatdb.api.connection import connect
from chatdb.api.database import Database
from chatdb.db.connect import describe_connect_error
from chatdb.db.routing import using
from chatdb.db.urls import connect_params, mask_password
from chatdb.errors import ChatdbError, first_line
from chatdb.migrate.executor import Runner
from chatdb.migrate.location import migrations_dir
from chatdb.testing.admin import create_database, drop_database
from chatdb.testing.servers import temporary_server

SERVER_ENV = "CHATDB_TEST_DATABASE_URL"
T = TypeVar("T")
MIGRATIONS_INI = "chatdb_migrations"


class SecretUrl(str):
    """A database URL whose ``repr`` masks its password; ``str()`` is the URL itself."""

    def __repr__(self) -> str:
        return repr(mask_password(self))


def _on_server(url: str, doing: str, action: Callable[[], T]) -> T:
    """``action()``, or the test failed in one line naming the masked URL, no traceback."""
    try:
        return action()
    except (pytest.fail.Exception, pytest.skip.Exception):
        raise
    except Exception as exc:
        failure = _one_line(url, exc)
    # Outside the except block: the driver's error, which may quote the URL, is not chained.
    pytest.fail(f"chatdb plugin, {doing}: {failure}", pytrace=False)


def _one_line(url: str, exc: Exception) -> str:
    if isinstance(exc, ChatdbError):
        reason = first_line(exc)
    elif isinstance(exc, psycopg2.OperationalError | pw.OperationalError):
        reason = describe_connect_error(url, exc)
    else:
        reason = f"{mask_password(url)}: {type(exc).__name__}: {first_line(exc)}"
    password = connect_params(url).get("password")
    return reason.replace(password, "***") if password else reason


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
        _on_server(external, f"reading {SERVER_ENV}", lambda: connect_params(external))
        yield SecretUrl(external)
        return
    with temporary_server("chatdb-pytest-", password=chatdb_server_password) as server:
        yield SecretUrl(server.url("postgres"))


@pytest.fixture
def chatdb_new_database(chatdb_server_url: str) -> Iterator[Callable[..., str]]:
    """A factory of fresh databases (``template`` names a database to copy); dropped after."""
    created: list[str] = []

    def make(template: str = "template0") -> str:
        url = SecretUrl(
            _on_server(
                chatdb_server_url,
                "creating a test database",
                lambda: create_database(chatdb_server_url, "chatdb_test", template),
            )
        )
        created.append(url)
        return url

    yield make
    for url in created:
        _on_server(
            chatdb_server_url,
            "dropping a test database",
            lambda url=url: drop_database(chatdb_server_url, url),  # type: ignore[misc]
        )


@pytest.fixture(scope="session")
def chatdb_migrations(pytestconfig: pytest.Config) -> Path:
    """The migrations the per-test databases are at the head of."""
    configured = pytestconfig.getini(MIGRATIONS_INI)
    return pytestconfig.rootpath / configured if configured else migrations_dir()


@pytest.fixture(scope="session")
def chatdb_template(chatdb_server_url: str, chatdb_migrations: Path) -> Iterator[str]:
    """The name of a database migrated to head once per session, which tests copy."""
    url = _on_server(
        chatdb_server_url,
        "creating the template database",
        lambda: create_database(chatdb_server_url, "chatdb_template"),
    )
    try:
        _on_server(url, "migrating the template database", lambda: _migrate(url, chatdb_migrations))
        yield str(connect_params(url)["dbname"])
    finally:
        _on_server(
            chatdb_server_url,
            "dropping the template database",
            lambda: drop_database(chatdb_server_url, url),
        )


def _migrate(url: str, migrations: Path) -> None:
    with Runner(url, migrations) as runner:
        runner.migrate()


@pytest.fixture
def chatdb_url(chatdb_new_database: Callable[..., str], chatdb_template: str) -> str:
    """URL of a database of this test's own at chatdb's head; dropped after the test."""
    return chatdb_new_database(template=chatdb_template)


@pytest.fixture
def chatdb_database(chatdb_url: str) -> Iterator[Database]:
    """This test's database at head, open, and current for the test: ``chatdb.create_thread``
    and friends, and the models, use it."""
    database = _on_server(
        chatdb_url, "connecting to the test database", lambda: connect(chatdb_url)
    )
    try:
        with using(database):
            yield database
    finally:
        database.close_all()
