"""Search, token accounting and reindexing from async code: twins of the sync API's.

The statements, their checks and the shaping of their rows are the sync
API's own (``Search``, ``usage_query``, the reindex statements); only the
running differs.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import asyncpg

from chatdb.aio.session import atomic, is_broken, session
from chatdb.aio.sql import fetch, run
from chatdb.api import queries
from chatdb.api.accounting import TokenTotal, totals, usage_query
from chatdb.api.checks import as_uuid
from chatdb.api.defaults import DEFAULT_BATCH_SIZE
from chatdb.api.reindex import (
    COUNT_LEFT,
    REWRITE_BATCH,
    TRIGGER,
    TRIGGER_ENABLED,
    Progress,
    advance,
    param,
    require_trigger,
)
from chatdb.api.search import RANK_OPERATOR, Search, index_order
from chatdb.api.search_limits import DEFAULT_TIMEOUT, SearchResults, limits_sql, timed_out
from chatdb.errors import InvalidInput, NotFound


async def search_messages(
    query: str,
    *,
    user_id: uuid.UUID | str | None = None,
    thread_id: uuid.UUID | str | None = None,
    vlab_id: uuid.UUID | str | None = None,
    project_id: uuid.UUID | str | None = None,
    limit: int = 20,
    offset: int = 0,
    timeout: float = DEFAULT_TIMEOUT,
    candidates: int | None = None,
    snippets: bool = True,
) -> SearchResults:
    """Messages matching ``query``, best first (see :func:`chatdb.search_messages`)."""
    search = Search(
        query,
        user_id,
        thread_id,
        vlab_id,
        project_id,
        limit,
        offset,
        timeout,
        candidates,
        snippets=snippets,
    )
    async with session("search_messages", writes=False) as connection:
        operator = None
        if search.index_order_helps:
            operator = index_order(next(iter(await run(connection, RANK_OPERATOR)), None))
        statement = search.statement(operator)
        hits = search.results(
            await _bounded(connection, *statement, timeout, sampled=search.sampled)
        )
        if not hits and search.thread is not None:
            await _thread_exists(connection, search.thread)
        headlines = search.headlines(hits)
        if headlines is not None:
            return search.with_snippets(
                hits, await _bounded(connection, *headlines, search.time_left())
            )
    return hits


async def _bounded(
    connection: asyncpg.Connection,
    sql: str,
    params: Mapping[str, Any],
    timeout: float,
    *,
    sampled: bool = False,
) -> list[asyncpg.Record]:
    """The rows of the search, under its settings in a transaction (a savepoint) undone after."""
    transaction = connection.transaction()
    await transaction.start()
    try:
        await connection.execute(limits_sql(timeout, sampled=sampled))
        return await run(connection, sql, params)
    except asyncpg.QueryCanceledError as exc:
        raise timed_out(timeout) from exc
    finally:
        if not is_broken(connection):
            await transaction.rollback()


async def _thread_exists(connection: asyncpg.Connection, thread: object) -> None:
    if not await fetch(connection, queries.thread_by_id(as_uuid(thread, "thread_id"))):
        raise NotFound(f"no thread {thread}")


async def token_usage(
    *,
    user_id: uuid.UUID | str | None = None,
    thread_id: uuid.UUID | str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> list[TokenTotal]:
    """Token counts summed by model, task and type (see :func:`chatdb.token_usage`)."""
    query, thread = usage_query(user_id=user_id, thread_id=thread_id, since=since, until=until)
    async with session("token_usage", writes=False) as connection:
        rows = [tuple(row) for row in await fetch(connection, query)]
        if not rows and thread is not None:
            await _thread_exists(connection, thread)
    return totals(rows)


async def reindex_search(
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    after: uuid.UUID | str | None = None,
    on_batch: Callable[[Progress], None] = lambda progress: None,
) -> Progress:
    """Recompute search vectors in committed batches (see :func:`chatdb.reindex_search`)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInput(f"batch size must be a positive integer, got {batch_size!r}")
    last = None if after is None else as_uuid(after, "after")
    async with session("reindex_search", writes=True) as connection:
        require_trigger(next(iter(await run(connection, TRIGGER_ENABLED, (TRIGGER,))), None))
        ((total,),) = await run(connection, COUNT_LEFT, (param(last), param(last)))
        progress = Progress(done=0, total=total, last_id=last, elapsed=0.0)
        started = time.monotonic()
        while True:
            key = param(progress.last_id)
            async with atomic(connection, "reindex_search"):
                rows = await run(connection, REWRITE_BATCH, (key, key, batch_size))
            if not rows:
                return progress
            progress = advance(progress, [row[0] for row in rows], started)
            on_batch(progress)
