"""``import chatdb`` and the command line load the heavy modules only when used."""

from __future__ import annotations

import subprocess
import sys

import chatdb

HEAVY = ("peewee", "psycopg2", "peewee_migrate", "chatdb.schema.models", "chatdb.migrate.executor")


def loaded_after(code: str, modules: tuple[str, ...] = HEAVY) -> set[str]:
    """Which of ``modules`` a fresh interpreter has loaded after running ``code``."""
    probe = f"{code}\nimport sys\nprint('|'.join(m for m in {modules!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    return set(filter(None, result.stdout.splitlines()[-1].split("|")))


def test_importing_chatdb_and_its_cli_loads_nothing_heavy():
    assert loaded_after("import chatdb") == set()
    assert loaded_after("import chatdb.cli.main") == set()


def test_help_loads_nothing_heavy():
    code = (
        "import sys\nfrom chatdb.cli.main import cli\n"
        "try:\n    cli(['--help'], prog_name='chatdb')\nexcept SystemExit:\n    pass"
    )
    assert loaded_after(code) == set()


def test_a_command_given_a_url_loads_neither_the_embedded_server_nor_html(db_url):
    code = (
        "from chatdb.cli.main import cli\n"
        f"try:\n    cli(['migrate', '--database', {str(db_url)!r}], prog_name='chatdb')\n"
        "except SystemExit as exc:\n    assert not exc.code, exc.code"
    )
    assert loaded_after(code, ("chatdb.db.embedded", "html", "chatdb.migrate.executor")) == {
        "chatdb.migrate.executor"
    }


def test_the_console_script_never_loads_what_peewee_migrate_imports_for_create_auto(db_url):
    code = (
        f"import sys\nsys.argv = ['chatdb', 'migrate', '--database', {str(db_url)!r}]\n"
        "from chatdb.cli import run\n"
        "try:\n    run()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code"
    )
    assert loaded_after(code, ("asyncio", "peewee_migrate")) == {"peewee_migrate"}


def test_a_deferred_module_works_when_something_uses_it():
    code = (
        "from chatdb.cli.deferred import defer_unused_imports\ndefer_unused_imports()\n"
        "import peewee_migrate\nfrom unittest import mock\nimport unittest.mock\n"
        "assert mock.Mock(return_value=3)() == 3 and unittest.mock.sentinel.x"
    )
    assert loaded_after(code, ("asyncio",)) == {"asyncio"}


def test_every_public_name_resolves():
    for name in chatdb.__all__:
        assert getattr(chatdb, name) is not None, name
    assert set(chatdb.__all__) <= set(dir(chatdb))
    namespace: dict = {}
    exec("from chatdb import *", namespace)
    assert set(chatdb.__all__) <= set(namespace)
    assert chatdb.search_messages.__module__ == "chatdb.api.search"


def test_unknown_names_are_attribute_errors():
    try:
        chatdb.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("chatdb.no_such_name resolved")
