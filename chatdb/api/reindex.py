"""Recomputing ``messages.search_vector`` for rows that already exist.

Rows are rewritten in batches, walking the primary key (keyset: each batch
starts after the last key of the previous one), each batch in its own short
transaction: locks are held for one batch only, so the application keeps
writing meanwhile, and rows it inserts get their vector from the trigger
anyway. A rewrite is ``content = content``: the search trigger (the one place
that knows how a vector is computed) recomputes the vector, and nothing
changes if the trigger were missing, which is checked first. An interrupted
run resumes from the last committed key (``after``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import peewee as pw

from chatdb.api.checks import as_uuid
from chatdb.api.defaults import DEFAULT_BATCH_SIZE
from chatdb.api.session import session
from chatdb.errors import ChatdbError, InvalidInput

TRIGGER = "messages_search_vector_trigger"


@dataclass(frozen=True)
class Progress:
    """Where a reindex run stands after a committed batch."""

    done: int
    total: int
    last_id: uuid.UUID | None
    elapsed: float

    @property
    def rate(self) -> float:
        """Rows per second so far."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate, if known."""
        return max(self.total - self.done, 0) / self.rate if self.rate else None


def reindex_search(
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    after: uuid.UUID | str | None = None,
    on_batch: Callable[[Progress], None] = lambda progress: None,
) -> Progress:
    """Recompute the search vector of every message whose id is greater than ``after``.

    ``on_batch`` is called after each committed batch; whatever stops the run
    (an exception from it, Ctrl-C, a lost connection), ``Progress.last_id``
    of the last call is where to resume.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInput(f"batch size must be a positive integer, got {batch_size!r}")
    last = None if after is None else as_uuid(after, "after")
    with session("reindex_search", writes=True) as database:
        return _reindex(database, batch_size, last, on_batch)


# The statements of a run, shared by the sync and the async API. Parameters: the id to
# start after (twice; NULL for the start), and for a batch its size.
COUNT_LEFT = "SELECT count(*) FROM messages WHERE %s::uuid IS NULL OR message_id > %s::uuid"
REWRITE_BATCH = """
    WITH batch AS (
        SELECT message_id FROM messages
        WHERE %s::uuid IS NULL OR message_id > %s::uuid
        ORDER BY message_id LIMIT %s
    )
    UPDATE messages m SET content = m.content
    FROM batch WHERE m.message_id = batch.message_id
    RETURNING m.message_id
"""
TRIGGER_ENABLED = """
    SELECT tgenabled <> 'D' FROM pg_trigger
    WHERE tgrelid = to_regclass('messages') AND tgname = %s
"""


def _reindex(
    database: pw.Database,
    batch_size: int,
    last: uuid.UUID | None,
    on_batch: Callable[[Progress], None],
) -> Progress:
    require_trigger(database.execute_sql(TRIGGER_ENABLED, (TRIGGER,)).fetchone())
    total = database.execute_sql(COUNT_LEFT, (param(last), param(last))).fetchone()[0]
    progress = Progress(done=0, total=total, last_id=last, elapsed=0.0)
    started = time.monotonic()
    while True:
        with database.atomic():
            rows = database.execute_sql(
                REWRITE_BATCH, (param(progress.last_id), param(progress.last_id), batch_size)
            ).fetchall()
        if not rows:
            return progress
        progress = advance(progress, [row[0] for row in rows], started)
        on_batch(progress)


def advance(progress: Progress, ids: list[Any], started: float) -> Progress:
    """Where a run stands once the batch of ``ids`` has committed."""
    done = progress.done + len(ids)
    return Progress(
        done=done,
        total=max(progress.total, done),
        last_id=max(uuid.UUID(str(key)) for key in ids),
        elapsed=time.monotonic() - started,
    )


def param(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def require_trigger(enabled: Any) -> None:
    """``ChatdbError`` unless the row of :data:`TRIGGER_ENABLED` says the trigger is on."""
    if not enabled or not enabled[0]:
        raise ChatdbError(
            f"the search trigger {TRIGGER} is missing or disabled on messages, so there is "
            "nothing to recompute vectors with; run `chatdb migrate` (or enable the trigger)"
        )
