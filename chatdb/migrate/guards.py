"""Refusing to migrate or roll back a database whose schema is not what its history says.

Migrations are written against the schema their predecessors leave; run on
another one, they fail half way or, worse, succeed and hide the difference.
Both directions of the executor pass through :func:`refuse_drift` before
writing anything. Two states are not drift: a migration run outside a
transaction that was interrupted (its steps are idempotent, running the
same command again completes it), and, with ``ignore``, anything the user
has looked at and accepted. A restored pre-handover backup is always
refused: the only way on is to forget the stale history.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import peewee as pw

from chatdb.catalog import Catalog, between, diff, snapshots
from chatdb.errors import ChatdbError, DriftDetected, Remedy, SnapshotUnreadable
from chatdb.migrate import history, loader, verify

SHOWN = 3  # differences quoted in the refusal; `chatdb check` lists them all


def refuse_drift(
    database: pw.Database,
    directory: Path,
    applied: Sequence[history.Applied],
    unfinished: loader.MigrationFile | None,
    *,
    verb: str,
    ignore: bool,
    log: Callable[[str], None],
) -> None:
    """Raise unless the live schema is what ``applied`` leaves.

    ``unfinished`` is the migration an interrupted run may have left half
    done: the next one to apply, or the one being rolled back. When it runs
    outside a transaction, a schema between the one before it and the one
    after it is accepted.
    """
    if not applied:
        return  # no history to compare with; the executor refuses unmanaged chat tables
    directory = Path(directory)
    try:
        expected = verify.expected(directory, applied)
    except SnapshotUnreadable:
        raise  # damaged: no check at all would be worse than stopping
    except ChatdbError as exc:  # a migration added since the snapshots were written
        log(f"not checked for drift: {exc}")
        return
    live = verify.live(database)
    if verify.is_restored(directory, applied, live):
        raise DriftDetected(f"refusing to {verb}: {verify.restored_message(applied[-1].name)}")
    differences = diff(expected, live)
    if not differences or ignore or _half_done(directory, unfinished, live):
        return
    shown = "; ".join(map(str, differences[:SHOWN])) + ("; ..." if len(differences) > SHOWN else "")
    raise DriftDetected(
        f"refusing to {verb}: the schema differs from what the applied migrations leave "
        f"after {applied[-1].name} ({len(differences)} difference(s): {shown}); nothing was "
        "changed; `chatdb check` lists them: put the schema back",
        differences=differences,
        remedy=Remedy.IGNORE_DRIFT,
    )


def _half_done(directory: Path, unfinished: loader.MigrationFile | None, live: Catalog) -> bool:
    """Whether ``live`` is part way through ``unfinished``, run outside a transaction."""
    if unfinished is None or unfinished.atomic:
        return False
    names = loader.names(directory)
    index = names.index(unfinished.name)
    try:
        before = snapshots.expected(directory, names[index - 1]) if index else verify.EMPTY
        after = snapshots.expected(directory, unfinished.name)
    except ChatdbError:
        return False
    return between(before, after, live)
