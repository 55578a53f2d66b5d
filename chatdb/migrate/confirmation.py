"""The one confirmation that lets a run drop data, whatever front end started it.

A rollback that drops tables or columns holding data, or a migration whose
``guard_data_loss`` step finds rows in what it drops, goes on only when the
run is confirmed: ``CHATDB_ALLOW_DATA_LOSS=1`` in the environment, for every
front end (plain ``pw_migrate`` has no option of ours), or ``chatdb``'s
``--yes``. The executor holds the confirmation for the length of a run
(:func:`confirmed`); the guards read it (:func:`is_confirmed`), so nothing
has to be set on the migrator.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator

ALLOW_DATA_LOSS_ENV = "CHATDB_ALLOW_DATA_LOSS"

_CONFIRMED: contextvars.ContextVar[bool] = contextvars.ContextVar("data_loss", default=False)


def allowed_by_environment() -> bool:
    """Whether ``CHATDB_ALLOW_DATA_LOSS=1`` confirms data loss, whatever runs the migrations."""
    return os.environ.get(ALLOW_DATA_LOSS_ENV) == "1"


@contextlib.contextmanager
def confirmed(yes: bool) -> Iterator[None]:
    """For the length of a run: data loss is confirmed if ``yes`` or the environment says so."""
    token = _CONFIRMED.set(yes or allowed_by_environment())
    try:
        yield
    finally:
        _CONFIRMED.reset(token)


def is_confirmed() -> bool:
    return _CONFIRMED.get()
