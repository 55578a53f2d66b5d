"""Finding and reading migration files.

A migration is a peewee-migrate file ``NNN_name.py`` with ``migrate`` and
``rollback`` functions. Its name is three digits, an underscore and lower-case
letters, digits and underscores, nothing else: names go into SQL comments
(``--sql``) and the history table, so a name with a newline or a ``;`` is
refused rather than trusted, and so is a file that is not a regular file (a
FIFO would block the reader for ever). chatdb also reads one optional module
attribute, ``atomic``: ``False`` runs the migration outside a transaction (for
``CREATE INDEX CONCURRENTLY``), like ``playhouse.migrate``'s ``atomic=False``;
and ``renamed``, ``{new: old}`` for tables (``"name"``) and columns
(``"table.column"``) the migration renames, so the rollback's data-loss
refusal does not mistake a rename for a drop.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatdb.errors import ChatdbError

FILENAME = re.compile(r"\d{3}_[a-z0-9_]+\.py")
# What peewee-migrate would take for a migration: refused unless it is FILENAME.
_LOOKS_LIKE_ONE = re.compile(r"\d{3}_[^.]+\.py\s*")


@dataclass(frozen=True)
class MigrationFile:
    name: str
    path: Path
    checksum: str
    atomic: bool
    renamed: dict[str, str]
    migrate: Callable[..., Any]
    rollback: Callable[..., Any]


def checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def names(directory: Path) -> list[str]:
    """Migration names in the directory, in order; a clear error when there are none."""
    if directory.exists() and not directory.is_dir():
        raise ChatdbError(
            f"migrations directory {directory} is a file, not a directory; pass the "
            "directory holding the migrations with --directory"
        )
    if not directory.is_dir():
        raise ChatdbError(
            f"migrations directory {directory} does not exist; pass an existing one with "
            "--directory, or leave it out to use chatdb's own"
        )
    candidates = [p for p in directory.iterdir() if _LOOKS_LIKE_ONE.fullmatch(p.name)]
    for path in candidates:
        if not FILENAME.fullmatch(path.name):
            raise ChatdbError(
                f"migration file name {path.name!r} in {directory} may hold only digits, "
                "lower-case letters and underscores (NNN_name.py); rename it"
            )
        if not path.is_file():
            raise ChatdbError(
                f"migration {path} is not a regular file; replace it with the migration's "
                "source file"
            )
    found = sorted(p.stem for p in candidates)
    if not found:
        raise ChatdbError(
            f"migrations directory {directory} holds no migrations (NNN_name.py files); "
            "pass the directory that does with --directory"
        )
    return found


def load(directory: Path, name: str) -> MigrationFile:
    """Execute one migration file and return what it defines."""
    path = directory / f"{name}.py"
    if not FILENAME.fullmatch(path.name):
        raise ChatdbError(
            f"migration name {name!r} may hold only digits, lower-case letters and "
            "underscores (NNN_name); rename the file"
        )
    if not path.is_file():
        raise ChatdbError(
            f"migration {path} is missing or not a regular file; restore the migration's "
            "source file"
        )
    scope: dict[str, Any] = {"__file__": str(path), "__name__": f"migrations.{name}"}
    try:
        code = compile(path.read_text(), str(path), "exec", dont_inherit=True)
        exec(code, scope)
    except Exception as exc:
        raise ChatdbError(
            f"migration {path} does not import: {type(exc).__name__}: {exc}; fix the file"
        ) from exc
    if not callable(scope.get("migrate")) or not callable(scope.get("rollback")):
        raise ChatdbError(
            f"migration {path} must define both migrate() and rollback(); add the missing one"
        )
    return MigrationFile(
        name=name,
        path=path,
        checksum=checksum(path),
        atomic=bool(scope.get("atomic", True)),
        renamed=dict(scope.get("renamed", {})),
        migrate=scope["migrate"],
        rollback=scope["rollback"],
    )


def load_all(directory: Path) -> list[MigrationFile]:
    return [load(directory, name) for name in names(directory)]
