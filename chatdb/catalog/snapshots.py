"""The catalog each migration is expected to leave behind, stored beside the files.

``migrations/schema/<name>.json`` is the catalog (history table aside) of a
database migrated from nothing up to and including ``<name>``. Handover
verification and ``chatdb check`` compare live databases against these
without needing a scratch database; a test proves they are what the
migrations really produce. ``chatdb write-snapshots``
(:mod:`chatdb.migrate.write_snapshots`) writes them.
"""

from __future__ import annotations

from pathlib import Path

from chatdb.catalog.model import Catalog
from chatdb.errors import ChatdbError

FOLDER = "schema"


def path_for(directory: Path, name: str) -> Path:
    return Path(directory) / FOLDER / f"{name}.json"


def expected(directory: Path, name: str) -> Catalog:
    """The stored catalog after migration ``name``."""
    path = path_for(directory, name)
    if not path.exists():
        raise ChatdbError(
            f"no schema snapshot {path} for migration {name}; regenerate them with "
            "chatdb write-snapshots --database URL_OF_AN_EMPTY_DATABASE"
        )
    return Catalog.load(path)
