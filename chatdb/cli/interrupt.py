"""Ctrl-C, wherever it lands: one line and exit 130, as Unix tools do.

While libpq waits for a query, Python's SIGINT handler cannot run until
the query ends (libpq retries its wait through signals). The C-level half
of the handler still writes to the wakeup file descriptor at once, though:
a watcher thread reading it asks the server to cancel the running queries,
the query fails at once, and the KeyboardInterrupt waiting behind it is
raised.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import NoReturn


def interrupted(*, end_line: bool) -> NoReturn:
    """Say so in one line and exit 130, after ending the terminal's ``^C`` line if needed."""
    sys.stderr.write(("\n" if end_line else "") + "interrupted\n")
    sys.exit(130)


def cancel_queries_on_ctrl_c() -> None:
    """From now on, a Ctrl-C also cancels the query the main thread waits for."""
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return  # SIGINT ignored (a background job) or handled by someone else
    read, write = os.pipe()
    os.set_blocking(write, False)
    signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    threading.Thread(target=_watch, args=(read,), name="chatdb-ctrl-c", daemon=True).start()


def _watch(read: int) -> None:
    while True:
        received = os.read(read, 64)
        if signal.SIGINT in received:
            # No connection exists before chatdb.db.connect is imported; importing it here
            # could contend with the main thread's imports, so look it up instead.
            connect = sys.modules.get("chatdb.db.connect")
            if connect is not None:
                connect.cancel_queries()
