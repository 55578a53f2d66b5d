"""``import chatdb`` and the command line load the heavy modules only when used."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


def without(source: str, start: str, end: str) -> str:
    """``source`` minus the text from ``start`` up to (not including) ``end``."""
    first = source.index(start)
    return source[:first] + source[source.index(end, first) :]


def enum_without(label: str):
    return lambda schema: (schema / "enums.py").write_text(
        without((schema / "enums.py").read_text(), f"    {label} = ", "\n")
    )


def models_without(model: str):
    def edit(schema):
        source = (schema / "models.py").read_text()
        source = without(source, f"class {model}(pw.Model):", "\n\n\nclass ")
        source = source.replace(f"    {model},\n", "").replace(f"{model}, ", "")
        source = source.replace(f", {model})", ")")
        (schema / "models.py").write_text(source)

    return edit


SCHEMA_EDITS = {
    **{f"label {label}": enum_without(label) for label in ("USER", "AI_MESSAGE", "TOOL")},
    "model ComplexityEstimation": models_without("ComplexityEstimation"),
    "model ToolSelection": models_without("ToolSelection"),
}


@pytest.mark.parametrize("edit", sorted(SCHEMA_EDITS))
def test_the_package_imports_with_a_label_or_model_removed_from_the_schema(tmp_path, edit):
    """What a developer does before `chatdb create`: the data API and create still import."""
    package = tmp_path / "chatdb"
    shutil.copytree(
        Path(chatdb.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__")
    )
    SCHEMA_EDITS[edit](package / "schema")
    code = (
        "import chatdb, chatdb.api.database, chatdb.aio, chatdb.migrate.create, chatdb.cli.create\n"
        "from chatdb.migrate.shadow import load_models\n"
        "print(chatdb.Database.__name__, len(load_models('chatdb.schema.models')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "Database"
