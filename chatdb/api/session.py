"""The frame of every data API call: which database, which connection, which errors.

Every public function checks its arguments first, then sends its SQL inside
:func:`session`: on the current database (``chatdb.db.routing``), with a
connection borrowed for the block and given back after (unless the caller
holds one, in ``with db:``). A connection that breaks under it becomes
:class:`ConnectionLost`, saying the cause and whether anything may have been
written.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import peewee as pw
import psycopg2

from chatdb.db.routing import current, using
from chatdb.errors import ConnectionLost, first_line

_BROKEN = (
    pw.InterfaceError,
    pw.OperationalError,
    psycopg2.InterfaceError,
    psycopg2.OperationalError,
)


@contextmanager
def session(what: str, *, writes: bool) -> Iterator[pw.Database]:
    """The current database, connected for the block, with lost connections explained.

    ``what`` names the call in messages; ``writes`` says whether it may write:
    a read that loses its connection wrote nothing, whatever the moment.
    """
    database = current()
    forget_commit = getattr(database, "commit_failed", None)
    if forget_commit is not None:
        forget_commit()  # an earlier call's failed commit says nothing about this one
    borrowed = database.is_closed()
    if borrowed:
        database.connect()
    try:
        with using(database):
            yield database
    except _BROKEN as exc:
        if not _is_broken(database):
            raise
        target = str(getattr(database, "target", database.database))
        in_commit = getattr(database, "commit_failed", lambda: True)()
        raise lost_connection(target, what, exc, writes=writes, in_commit=in_commit) from exc
    finally:
        if borrowed:
            _give_back(database)


def _is_broken(database: pw.Database) -> bool:
    connection = database._state.conn  # type: ignore[attr-defined]  # not in the stubs
    return connection is None or bool(connection.closed)


def lost_connection(
    target: str, what: str, exc: BaseException, *, writes: bool, in_commit: bool
) -> ConnectionLost:
    """The error for a connection to ``target`` that broke during ``what``: cause and outcome.

    The outcome is known unless the call writes and the break came while committing.
    """
    cause = f"the connection to {target} was lost during {what}() ({first_line(exc)})"
    if writes and in_commit:
        return ConnectionLost(
            f"{cause} while committing: whether it was written is unknown; repeat the call "
            "with the same ids (appends with caller-chosen message_id are idempotent) or read "
            "back to find out",
            outcome_known=False,
        )
    done = "it read nothing back" if not writes else "it was not committed"
    return ConnectionLost(
        f"{cause}; {done}, so nothing was written and calling again is safe",
        outcome_known=True,
    )


def _give_back(database: pw.Database) -> None:
    if database.in_transaction():
        return  # the caller's transaction, left open by an error: theirs to end
    release = getattr(database, "release", database.close)
    release()
