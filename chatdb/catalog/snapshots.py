"""The catalog each migration is expected to leave behind, stored beside the files.

``migrations/schema/<name>.json`` is the catalog (history table aside) of a
database migrated from nothing up to and including ``<name>``. Handover
verification and ``chatdb check`` compare live databases against these
without needing a scratch database; a test proves they are what the
migrations really produce. ``chatdb write-snapshots``
(:mod:`chatdb.migrate.write_snapshots`) writes them.
"""

from __future__ import annotations

import json
from pathlib import Path

from chatdb.catalog.model import Catalog
from chatdb.errors import ChatdbError, SnapshotUnreadable

FOLDER = "schema"
REGENERATE = "chatdb write-snapshots --database URL_OF_AN_EMPTY_DATABASE"


def path_for(directory: Path, name: str) -> Path:
    return Path(directory) / FOLDER / f"{name}.json"


def expected(directory: Path, name: str) -> Catalog:
    """The stored catalog after migration ``name``."""
    path = path_for(directory, name)
    if not path.exists():
        raise ChatdbError(
            f"no schema snapshot {path} for migration {name}; regenerate them with {REGENERATE}"
        )
    return load(path)


def load(path: Path) -> Catalog:
    """The catalog stored at ``path``, or one line naming the file, its fault and the repair."""
    try:
        return Catalog.load(path)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SnapshotUnreadable(
            f"schema snapshot {path} is unreadable ({_fault(exc)}); restore it from version "
            f"control, or regenerate the snapshots with {REGENERATE}"
        ) from exc


def _fault(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"not JSON: {exc.msg} at line {exc.lineno}"
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(exc, KeyError):
        return f"no {exc.args[0]!r} key"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return "not a catalog: unexpected structure"
