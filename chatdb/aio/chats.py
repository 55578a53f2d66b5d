"""Writing and reading chats from async code: the twin of :mod:`chatdb.api.chats`.

Same checks (they are the sync API's own functions), same statements (the
sync API's Peewee queries and SQL, run on asyncpg), same errors. Appends
stream rows with asyncpg's binary ``COPY`` in one transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Literal, overload

import asyncpg

from chatdb.aio.session import atomic, session
from chatdb.aio.sql import fetch, models, run
from chatdb.api import pages, queries
from chatdb.api.batch import (
    EXISTING,
    LOCK_MESSAGE,
    LOCK_THREADS,
    MESSAGE_COLUMNS,
    TOUCH_THREADS,
    Batch,
    ComplexityIn,
    NewMessage,
    TokenUsageIn,
    ToolCallIn,
)
from chatdb.api.chats import (
    MessageAfter,
    ThreadAfter,
    caller_error,
    keyset,
    new_thread,
    one_message,
    same_thread,
    written_message,
)
from chatdb.api.checks import as_uuid, check_limit, check_text
from chatdb.api.pages import MessageRow, ThreadRow
from chatdb.errors import NotFound
from chatdb.schema.enums import Entity
from chatdb.schema.models import DEFAULT_TITLE, Message, Thread


async def create_thread(
    user_id: uuid.UUID | str,
    title: str = DEFAULT_TITLE,
    vlab_id: uuid.UUID | str | None = None,
    project_id: uuid.UUID | str | None = None,
    *,
    thread_id: uuid.UUID | str | None = None,
) -> Thread:
    """A new, empty thread of ``user_id`` (idempotent on a chosen ``thread_id``)."""
    thread = new_thread(user_id, title, vlab_id, project_id, thread_id)
    async with (
        session("create_thread", writes=True) as connection,
        atomic(connection, "create_thread"),
    ):
        if thread_id is not None:
            found = await models(connection, Thread, queries.thread_by_id(thread.thread_id))
            existing = same_thread(thread, found)
            if existing is not None:
                return existing
        await fetch(connection, Thread.insert(thread.__data__))
        return thread


async def get_thread(thread_id: uuid.UUID | str) -> Thread:
    """The thread, or :class:`NotFound`."""
    key = as_uuid(thread_id, "thread_id")
    async with session("get_thread", writes=False) as connection:
        return await _thread(connection, key)


async def update_thread(thread_id: uuid.UUID | str, *, title: str) -> Thread:
    """Rename a thread; its ``update_date`` is left alone."""
    key = as_uuid(thread_id, "thread_id")
    text = check_text(title, "title")
    async with (
        session("update_thread", writes=True) as connection,
        atomic(connection, "update_thread"),
    ):
        query = Thread.update(title=text).where(Thread.thread_id == key)
        if not await fetch(connection, query.returning(Thread.thread_id)):
            raise NotFound(f"no thread {key}")
        return await _thread(connection, key)


@overload
async def list_threads(
    user_id: uuid.UUID | str,
    *,
    limit: int = 20,
    after: ThreadAfter = None,
    rows: Literal[False] = False,
) -> list[Thread]: ...
@overload
async def list_threads(
    user_id: uuid.UUID | str, *, limit: int = 20, after: ThreadAfter = None, rows: Literal[True]
) -> list[ThreadRow]: ...
async def list_threads(
    user_id: uuid.UUID | str, *, limit: int = 20, after: ThreadAfter = None, rows: bool = False
) -> list[Thread] | list[ThreadRow]:
    """A page of ``user_id``'s threads, most recently updated first; ``after`` a thread or id;
    ``rows=True``: light rows instead of models."""
    owner = as_uuid(user_id, "user_id")
    check_limit(limit)
    last = keyset(after, (Thread, ThreadRow))
    sql, params = pages.threads_page(owner, limit, last)
    async with session("list_threads", writes=False) as connection:
        found = await run(connection, sql, params)
        if not found and isinstance(last, uuid.UUID):
            await _exists(connection, pages.THREAD_EXISTS, last, "thread")
    plain = pages.standard(found)
    return pages.thread_rows(plain) if rows else pages.threads(plain)


async def _exists(connection: asyncpg.Connection, sql: str, key: uuid.UUID, what: str) -> None:
    if not await run(connection, sql, {"key": str(key)}):
        raise NotFound(f"no {what} {key}")


async def delete_thread(thread_id: uuid.UUID | str) -> None:
    """Delete a thread and, through the database's cascades, everything under it."""
    key = as_uuid(thread_id, "thread_id")
    query = Thread.delete().where(Thread.thread_id == key).returning(Thread.thread_id)
    async with (
        session("delete_thread", writes=True) as connection,
        atomic(connection, "delete_thread"),
    ):
        if not await fetch(connection, query):
            raise NotFound(f"no thread {key}")


async def add_message(
    thread_id: uuid.UUID | str,
    entity: Entity | str,
    content: Mapping[str, Any] | str,
    *,
    message_id: uuid.UUID | str | None = None,
    is_complete: bool = True,
    tool_calls: Iterable[ToolCallIn] = (),
    selected_tools: Iterable[str] = (),
    complexity: ComplexityIn | None = None,
    token_usage: Iterable[TokenUsageIn] = (),
) -> Message:
    """Append one message with its details, atomically (idempotent on a chosen ``message_id``)."""
    details = {
        "tool_calls": tool_calls,
        "selected_tools": selected_tools,
        "complexity": complexity,
        "token_usage": token_usage,
    }
    batch = one_message(thread_id, entity, content, message_id, is_complete, details)
    stored = await _write(batch, "add_message")
    assert batch.first is not None  # one message, streamed
    return written_message(batch.first, stored)


async def add_messages(messages: Iterable[NewMessage]) -> list[uuid.UUID]:
    """Append many messages in one transaction; their ids in order (see the sync API)."""
    batch = Batch(messages)
    await _write(batch, "add_messages")
    return batch.ids


async def add_message_details(
    message_id: uuid.UUID | str,
    *,
    tool_calls: Iterable[ToolCallIn] = (),
    selected_tools: Iterable[str] = (),
    complexity: ComplexityIn | None = None,
    token_usage: Iterable[TokenUsageIn] = (),
) -> Message:
    """Record details of a stored message, atomically; the message with all of its details."""
    details: NewMessage = {
        "tool_calls": tool_calls,
        "selected_tools": selected_tools,
        "complexity": complexity,
        "token_usage": token_usage,
    }
    key = as_uuid(message_id, "message_id")
    batch = Batch.details(key, details)
    async with (
        session("add_message_details", writes=True) as connection,
        atomic(connection, "add_message_details"),
        _constraint_errors(),
    ):
        if not await run(connection, LOCK_MESSAGE, (key,)):
            raise NotFound(f"no message {key}")
        await _copy_children(connection, batch)
        return await _message(connection, key)


async def _write(batch: Batch, what: str) -> dict[uuid.UUID, dt.datetime]:
    if not len(batch):
        return {}
    async with (
        session(what, writes=True) as connection,
        atomic(connection, what),
        _constraint_errors(),
    ):
        locked = await run(connection, LOCK_THREADS, ([str(i) for i in batch.threads],))
        batch.check_threads(row[0] for row in locked)
        stored: dict[uuid.UUID, dt.datetime] = {}
        if batch.chosen:
            chosen = [str(key) for key in batch.chosen]
            stored = batch.settle_existing(await run(connection, EXISTING, (chosen,)))
        for rows in batch.chunks():
            await _copy(connection, "messages", MESSAGE_COLUMNS, rows)
            await _copy_children(connection, batch)
        await run(connection, TOUCH_THREADS, batch.touch_params())
        return stored


async def _copy_children(connection: asyncpg.Connection, batch: Batch) -> None:
    for table, columns, rows in batch.child_rows():
        await _copy(connection, table, columns, rows)


async def _copy(
    connection: asyncpg.Connection, table: str, columns: str, rows: Iterable[tuple[Any, ...]]
) -> None:
    names = [name.strip() for name in columns.split(",")]
    await connection.copy_records_to_table(table, records=rows, columns=names)


@asynccontextmanager
async def _constraint_errors() -> AsyncIterator[None]:
    try:
        yield
    except asyncpg.IntegrityConstraintViolationError as exc:
        error = caller_error(exc)
        if error is None:
            raise
        raise error from exc


@overload
async def list_messages(
    thread_id: uuid.UUID | str,
    *,
    limit: int = 100,
    after: MessageAfter = None,
    rows: Literal[False] = False,
) -> list[Message]: ...
@overload
async def list_messages(
    thread_id: uuid.UUID | str, *, limit: int = 100, after: MessageAfter = None, rows: Literal[True]
) -> list[MessageRow]: ...
async def list_messages(
    thread_id: uuid.UUID | str,
    *,
    limit: int = 100,
    after: MessageAfter = None,
    rows: bool = False,
) -> list[Message] | list[MessageRow]:
    """A page of a thread's messages, oldest first; ``after`` a message or its id;
    ``rows=True``: light rows instead of models."""
    key = as_uuid(thread_id, "thread_id")
    check_limit(limit)
    last = keyset(after, (Message, MessageRow))
    sql, params = pages.messages_page(key, limit, last)
    async with session("list_messages", writes=False) as connection:
        found = await run(connection, sql, params)
        if not found:
            if isinstance(last, uuid.UUID):
                await _exists(connection, pages.MESSAGE_EXISTS, last, "message")
            await _exists(connection, pages.THREAD_EXISTS, key, "thread")
    plain = pages.standard(found)
    return pages.message_rows(plain) if rows else pages.messages(plain)


async def get_message(message_id: uuid.UUID | str) -> Message:
    """The message with its details (lists, as in the sync API), or :class:`NotFound`."""
    key = as_uuid(message_id, "message_id")
    async with session("get_message", writes=False) as connection:
        return await _message(connection, key)


async def delete_message(message_id: uuid.UUID | str) -> None:
    """Delete a message and, through the database's cascades, its details."""
    key = as_uuid(message_id, "message_id")
    query = Message.delete().where(Message.message_id == key).returning(Message.message_id)
    async with (
        session("delete_message", writes=True) as connection,
        atomic(connection, "delete_message"),
    ):
        if not await fetch(connection, query):
            raise NotFound(f"no message {key}")


async def _thread(connection: asyncpg.Connection, key: uuid.UUID) -> Thread:
    found = await models(connection, Thread, queries.thread_by_id(key))
    if not found:
        raise NotFound(f"no thread {key}")
    return found[0]


async def _message_row(connection: asyncpg.Connection, key: uuid.UUID) -> Message:
    found = await models(connection, Message, queries.message_by_id(key))
    if not found:
        raise NotFound(f"no message {key}")
    return found[0]


async def _message(connection: asyncpg.Connection, key: uuid.UUID) -> Message:
    message = await _message_row(connection, key)
    for backref, query in queries.message_details():
        model = query.model
        rows = await models(connection, model, query.where(model.message == key))
        setattr(message, backref, rows)
    return message
