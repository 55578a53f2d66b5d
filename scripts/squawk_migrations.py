"""Run squawk on the SQL of every migration, as a second opinion next to ``chatdb lint``.

The SQL is what chatdb sends, not what the files say: ``chatdb migrate --sql``
from an empty database, and each migration's ``chatdb rollback --sql`` with
that migration at the head. Both are rendered on a scratch database of the
given server (created and dropped here), written one file per script, and
squawk reads them with the repository's ``.squawk.toml``, whose exceptions
docs/MIGRATION_WORKFLOW.md justifies. The exit status is squawk's::

    python scripts/squawk_migrations.py SERVER_URL [--directory MIGRATIONS]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from chatdb.migrate import loader, location, preview, shadow
from chatdb.migrate.executor import Runner

CONFIG = Path(__file__).resolve().parents[1] / ".squawk.toml"


def scripts(server_url: str, directory: Path, into: Path) -> list[Path]:
    """The upgrade script from empty and each migration's rollback, as files in ``into``."""
    written = []
    with shadow.scratch_database(server_url, "squawk") as url, Runner(url, directory) as runner:
        upgrade = into / "upgrade.sql"
        upgrade.write_text(preview.upgrade_sql(runner))
        written.append(upgrade)
        for name in loader.names(directory):
            runner.migrate(name)
            rollback = into / f"rollback_{name}.sql"
            rollback.write_text(preview.rollback_sql(runner, 1, yes=True))
            written.append(rollback)
    return written


def squawk() -> str:
    """The squawk of this environment (the test extra installs it beside Python)."""
    beside = Path(sys.executable).parent / "squawk"
    return str(beside) if beside.exists() else "squawk"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("server_url", help="a server where a scratch database may be created")
    parser.add_argument("--directory", type=Path, help="the migrations (default: chatdb's)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        files = scripts(args.server_url, location.resolve(args.directory), Path(scratch))
        command = [squawk(), "--config", str(CONFIG), "--reporter", "gcc", *map(str, files)]
        return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
