"""Where a long migration step tells how far it got: the run's log, whatever front end runs it.

A batched backfill (:mod:`chatdb.migrate.online`) runs for minutes on a large
table; the one step runner (:mod:`chatdb.migrate.apply`) hands it the run's
log for the length of a step (:func:`reporting`), so ``chatdb migrate``
prints its progress on stderr and plain ``pw_migrate`` logs it, and the
engine itself never prints.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

_LOG: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar(
    "progress", default=None
)


@contextlib.contextmanager
def reporting(log: Callable[[str], None]) -> Iterator[None]:
    """For the length of a step: progress lines go to ``log``."""
    token = _LOG.set(log)
    try:
        yield
    finally:
        _LOG.reset(token)


def report(text: str) -> None:
    """One progress line, to the running step's log (nowhere outside a run)."""
    log = _LOG.get()
    if log is not None:
        log(text)
