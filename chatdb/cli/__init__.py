"""The ``chatdb`` command line."""

from __future__ import annotations

import sys


def run() -> None:
    """The console script: a Ctrl-C at any moment, imports included, is one line and exit 130."""
    try:
        from chatdb.cli.main import main

        main()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
