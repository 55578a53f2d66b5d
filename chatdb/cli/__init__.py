"""The ``chatdb`` command line."""

from __future__ import annotations

from chatdb.cli.deferred import defer_unused_imports
from chatdb.cli.interrupt import cancel_queries_on_ctrl_c, interrupted


def run() -> None:
    """The console script: a Ctrl-C at any moment, imports included, is one line and exit 130."""
    try:
        cancel_queries_on_ctrl_c()
        defer_unused_imports()
        from chatdb.cli.main import main

        main()
    except KeyboardInterrupt:
        interrupted(end_line=True)
