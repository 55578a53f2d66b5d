"""Writing ``migrations/schema/<name>.json``: the catalog each migration leaves.

Run after adding a migration by hand:
``chatdb write-snapshots --database URL_OF_AN_EMPTY_DATABASE``.
"""

from __future__ import annotations

from pathlib import Path

from chatdb.catalog import read_catalog
from chatdb.catalog.snapshots import FOLDER, path_for
from chatdb.db.urls import mask_password
from chatdb.errors import ChatdbError
from chatdb.migrate import history, loader, location
from chatdb.migrate.executor import Runner


def write_all(url: str, directory: Path | str | None = None) -> list[Path]:
    """Migrate an empty database one step at a time, storing each catalog."""
    directory = location.resolve(directory)
    written = []
    with Runner(url, directory) as runner:
        if history.applied(runner.database) or read_catalog(runner.database).tables:
            raise ChatdbError(
                f"{mask_password(url)} is not empty; snapshots need an empty database"
            )
        (Path(directory) / FOLDER).mkdir(exist_ok=True)
        for name in loader.names(Path(directory)):
            runner.migrate(name)
            path = path_for(directory, name)
            path.write_text(read_catalog(runner.database).without(history.TABLE).to_json())
            written.append(path)
    return written
