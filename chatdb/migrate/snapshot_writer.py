"""Writing ``migrations/schema/<name>.json``: the catalog each migration leaves.

Run after adding a migration by hand:
``python -m chatdb.migrate.snapshot_writer --database URL_OF_AN_EMPTY_DATABASE``.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from chatdb.db.urls import mask_password
from chatdb.drift.catalog import read_catalog
from chatdb.drift.snapshots import FOLDER, path_for
from chatdb.errors import ChatdbError
from chatdb.migrate import history, loader, location
from chatdb.migrate.executor import Runner


def write_all(url: str, directory: Path | None = None) -> list[Path]:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="URL of an empty scratch database")
    parser.add_argument(
        "--directory", type=Path, default=None, help="default: chatdb's own migrations"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="Show tracebacks on errors.")
    args = parser.parse_args()
    try:
        written = write_all(args.database, args.directory)
    except ChatdbError as exc:  # one line, as every chatdb command fails
        if args.verbose:
            traceback.print_exception(exc)
        sys.exit(f"error: {exc}")
    for path in written:
        print(path)


if __name__ == "__main__":
    main()
