"""What ``migrations/conf.py`` gives plain ``pw_migrate``.

peewee-migrate lets ``conf.py``'s ``DATABASE`` override ``--database``; chatdb
reads ``--database`` from the command line itself, so an explicit URL still
wins, then ``DATABASE_URL``, then the embedded server (unless
``CHATDB_EMBEDDED=0``). The file is found through ``--directory``, so
``pw_migrate list --directory "$(chatdb migrations-dir)"`` works from anywhere. The history table is
created in chatdb's shape first, so plain ``pw_migrate`` runs get its unique
migration names too.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import peewee as pw

from chatdb.db.connect import open_database
from chatdb.db.target import choose
from chatdb.errors import ChatdbError
from chatdb.migrate import history


def explicit_database(argv: Sequence[str]) -> str | None:
    """The value of ``--database`` on a ``pw_migrate`` command line, if any."""
    for index, arg in enumerate(argv):
        if arg == "--database" and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--database="):
            return arg.split("=", 1)[1]
    return None


def refuse_autodetection(argv: Sequence[str]) -> None:
    """Stop ``pw_migrate create --auto``: it would write files that fail or miss changes.

    Its autodetection compares field names, so it misses enum labels, server
    defaults and lock-safe DDL; ``chatdb create`` compares catalogs.
    """
    if "create" in argv and any(arg == "--auto" or arg.startswith("--auto=") for arg in argv):
        sys.exit(
            "error: pw_migrate create --auto does not see enum labels, server defaults or "
            "lock-safe DDL in chatdb's models; run `chatdb create NAME` instead"
        )


def database_for(argv: Sequence[str]) -> pw.Database:
    """The database plain ``pw_migrate`` should use, named on stderr; one line on failure."""
    refuse_autodetection(argv)
    try:
        target = choose(explicit_database(argv))
        print(target.describe(), file=sys.stderr)
        database = open_database(target.url())
        history.ensure(database)
    except ChatdbError as exc:
        sys.exit(f"error: {exc}")
    return database
