"""The package layout is a contract: layers, no cycles, a frozen migration API."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import grimp
from importlinter.cli import lint_imports

from tests.conftest import MIGRATIONS, REPO

# What a migration file may import: a frozen picture of its moment needs
# peewee, peewee-migrate and chatdb's public migration API, never the models.
MIGRATION_IMPORTS = {"peewee", "peewee_migrate", "playhouse", "chatdb.operations", "chatdb.fields"}


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            if node.module == "chatdb":
                found |= {f"chatdb.{alias.name}" for alias in node.names}
    return found


def test_layers_hold() -> None:
    assert lint_imports(str(REPO / "setup.cfg"), no_cache=True, no_logo=True) == 0


# What writes to a terminal: only the command line (chatdb.cli) may.
PRINTERS = {"print", "echo", "secho", "print_exception", "print_exc", "exit"}
STREAMS = {"stdout", "stderr"}


def _prints(path: Path) -> list[str]:
    """Calls in ``path`` that write to the terminal: print, click.echo, sys.std*.write, sys.exit."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        function = node.func
        name = function.id if isinstance(function, ast.Name) else None
        if isinstance(function, ast.Attribute):
            name = function.attr
            owner = function.value
            if name == "write" and isinstance(owner, ast.Attribute) and owner.attr in STREAMS:
                name = "print"
            elif name == "exit" and not (isinstance(owner, ast.Name) and owner.id == "sys"):
                name = None
        if name in PRINTERS:
            found.append(f"{path.relative_to(REPO)}:{node.lineno} {name}")
    return found


def test_only_the_command_line_prints() -> None:
    """The engine and the API return data and raise errors; cli/ alone turns them into words."""
    outside = [
        path
        for path in sorted((REPO / "chatdb").rglob("*.py"))
        if path.relative_to(REPO / "chatdb").parts[0] != "cli"
    ]
    assert [call for path in outside for call in _prints(path)] == []
    assert _prints(REPO / "chatdb" / "cli" / "main.py"), "the check sees a print when there is one"


def test_no_import_cycle_even_through_lazy_imports() -> None:
    graph = grimp.build_graph("chatdb")
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if imported != module and graph.chain_exists(imported, module):
                cycles.append(" -> ".join(graph.find_shortest_chain(imported, module)))
    # A package's __init__ re-exporting its children is not a cycle of logic.
    cycles = [c for c in cycles if not c.endswith(" -> chatdb") and not c.startswith("chatdb ->")]
    assert cycles == []


def test_migrations_import_only_the_public_migration_api() -> None:
    stdlib = set(sys.stdlib_module_names)
    for path in sorted(MIGRATIONS.glob("0*.py")):
        foreign = {
            name
            for name in imported_modules(path)
            if name.split(".")[0] not in stdlib
            and name not in MIGRATION_IMPORTS
            and name.split(".")[0] not in MIGRATION_IMPORTS
            and name != "chatdb"
        }
        assert foreign == set(), path.name


def test_tests_and_benchmarks_do_not_import_each_other() -> None:
    for folder, other in (("tests", "bench"), ("bench", "tests")):
        for path in sorted((REPO / folder).glob("*.py")):
            roots = {name.split(".")[0] for name in imported_modules(path)}
            assert other not in roots, path


def test_the_lazy_public_names_are_the_typed_ones() -> None:
    """``chatdb/__init__.py`` names its API twice (lazy loading, type checkers): alike, all real."""
    import chatdb

    tree = ast.parse((REPO / "chatdb" / "__init__.py").read_text())
    typed = {
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("chatdb.")
        for alias in node.names
    }
    lazy = {(module, name) for module, names in chatdb._HOMES.items() for name in names}
    assert typed == lazy
    assert all(getattr(chatdb, name) is not None for name in chatdb.__all__)
