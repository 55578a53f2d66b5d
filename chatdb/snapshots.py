"""The catalog each migration is expected to leave behind, stored beside the files.

``migrations/schema/<name>.json`` is the catalog (history table aside) of a
database migrated from nothing up to and including ``<name>``. Handover
verification and ``chatdb check`` compare live databases against these
without needing a scratch database; a test proves they are what the
migrations really produce. Regenerate them after adding a migration with
``python -m chatdb.snapshots --database URL_OF_AN_EMPTY_DATABASE``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from chatdb import history, loader
from chatdb.catalog import Catalog, read_catalog
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
            "python -m chatdb.snapshots --database URL_OF_AN_EMPTY_DATABASE"
        )
    return Catalog.load(path)


def write_all(url: str, directory: Path) -> list[Path]:
    """Migrate an empty database one step at a time, storing each catalog."""
    from chatdb.runner import Runner

    written = []
    with Runner(url, directory) as runner:
        if history.applied(runner.database) or read_catalog(runner.database).tables:
            raise ChatdbError(f"{url} is not empty; snapshots need an empty database")
        (Path(directory) / FOLDER).mkdir(exist_ok=True)
        for name in loader.names(Path(directory)):
            runner.migrate(name)
            path = path_for(directory, name)
            path.write_text(read_catalog(runner.database).without(history.TABLE).to_json())
            written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="URL of an empty scratch database")
    parser.add_argument("--directory", default="migrations", type=Path)
    args = parser.parse_args()
    for path in write_all(args.database, args.directory):
        print(path)


if __name__ == "__main__":
    main()
