"""The ``chatdb`` command line."""

from __future__ import annotations

from chatdb.cli.interrupt import interrupted


def run() -> None:
    """The console script: a Ctrl-C at any moment, imports included, is one line and exit 130."""
    try:
        from chatdb.cli.main import main

        main()
    except KeyboardInterrupt:
        interrupted(end_line=True)
