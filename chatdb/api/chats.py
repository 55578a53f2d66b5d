"""Writing and reading chats without writing SQL.

Appends go through one path: a :class:`~chatdb.api.batch.Batch` checks each
message in Python as its row is streamed with ``COPY``, chunk by chunk, with
its children, in one transaction, so a bulk append costs about what a raw
``COPY`` of the same rows does, and holds one chunk at a time. Reading pages
with keysets (the last row of a page, or its id, is the cursor of the next),
which the head schema's indexes serve directly.

One rule for what is missing: a call that names a thread or a message that
does not exist raises :class:`~chatdb.errors.NotFound`, whatever it does.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal, overload

import peewee as pw

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
    conflict_message,
)
from chatdb.api.checks import as_uuid, check_limit, check_text
from chatdb.api.pages import MessageRow, ThreadRow
from chatdb.api.session import session
from chatdb.db.copy import copy_rows
from chatdb.db.sqlstate import (
    FOREIGN_KEY_VIOLATION,
    UNIQUE_VIOLATION,
    constraint_name,
    sqlstate,
)
from chatdb.errors import Conflict, NotFound
from chatdb.schema.content import read_json_text
from chatdb.schema.enums import Entity
from chatdb.schema.models import DEFAULT_TITLE, Message, Thread


def create_thread(
    user_id: uuid.UUID | str,
    title: str = DEFAULT_TITLE,
    vlab_id: uuid.UUID | str | None = None,
    project_id: uuid.UUID | str | None = None,
    *,
    thread_id: uuid.UUID | str | None = None,
) -> Thread:
    """A new, empty thread of ``user_id``.

    With ``thread_id`` chosen by the caller the call is idempotent: if that
    thread exists for the same user it is returned as it is; for another
    user it is a :class:`Conflict`.
    """
    thread = new_thread(user_id, title, vlab_id, project_id, thread_id)
    with session("create_thread", writes=True) as database, database.atomic():
        if thread_id is not None:
            existing = same_thread(thread, list(queries.thread_by_id(thread.thread_id)))
            if existing is not None:
                return existing
        thread.save(force_insert=True)
        return thread


def new_thread(
    user_id: object, title: object, vlab_id: object, project_id: object, thread_id: object
) -> Thread:
    """The thread ``create_thread`` inserts (arguments checked, defaults filled in)."""
    thread = Thread(
        user_id=as_uuid(user_id, "user_id"),
        title=check_text(title, "title"),
        vlab_id=None if vlab_id is None else as_uuid(vlab_id, "vlab_id"),
        project_id=None if project_id is None else as_uuid(project_id, "project_id"),
    )
    if thread_id is not None:
        thread.thread_id = as_uuid(thread_id, "thread_id")
    return thread


def same_thread(new: Thread, found: list[Thread]) -> Thread | None:
    """The stored thread with ``new``'s chosen id, if any; ``Conflict`` if another user's."""
    if not found:
        return None
    if found[0].user_id != new.user_id:
        raise Conflict(f"thread {new.thread_id} already exists for another user; choose a new id")
    return found[0]


def get_thread(thread_id: uuid.UUID | str) -> Thread:
    """The thread, or :class:`NotFound`."""
    key = as_uuid(thread_id, "thread_id")
    with session("get_thread", writes=False):
        return _thread(key)


def update_thread(thread_id: uuid.UUID | str, *, title: str) -> Thread:
    """Rename a thread; its ``update_date`` (the order of ``list_threads``) is left alone."""
    key = as_uuid(thread_id, "thread_id")
    text = check_text(title, "title")
    with session("update_thread", writes=True) as database, database.atomic():
        changed = Thread.update(title=text).where(Thread.thread_id == key).execute()
        if not changed:
            raise NotFound(f"no thread {key}")
        return _thread(key)


ThreadAfter = Thread | ThreadRow | uuid.UUID | str | None
MessageAfter = Message | MessageRow | uuid.UUID | str | None


@overload
def list_threads(
    user_id: uuid.UUID | str,
    *,
    limit: int = 20,
    after: ThreadAfter = None,
    rows: Literal[False] = False,
) -> list[Thread]: ...
@overload
def list_threads(
    user_id: uuid.UUID | str, *, limit: int = 20, after: ThreadAfter = None, rows: Literal[True]
) -> list[ThreadRow]: ...
def list_threads(
    user_id: uuid.UUID | str, *, limit: int = 20, after: ThreadAfter = None, rows: bool = False
) -> list[Thread] | list[ThreadRow]:
    """A page of ``user_id``'s threads, most recently updated first.

    Pass the last thread of a page (or its id) as ``after`` to get the next page.
    ``rows=True`` returns :class:`~chatdb.api.pages.ThreadRow` records instead of models.
    """
    owner = as_uuid(user_id, "user_id")
    check_limit(limit)
    last = keyset(after, (Thread, ThreadRow))
    sql, params = pages.threads_page(owner, limit, last)
    with session("list_threads", writes=False) as database:
        found = database.execute_sql(sql, params).fetchall()
        if not found and isinstance(last, uuid.UUID):
            _exists(database, pages.THREAD_EXISTS, last, "thread")
    return pages.thread_rows(found) if rows else pages.threads(found)


def keyset(after: object, kinds: tuple[type, ...]) -> Any:
    """``after`` as a page's keyset: a row of one of ``kinds``, or an id (``InvalidInput``)."""
    if after is None or isinstance(after, kinds):
        return after
    return as_uuid(after, "after")


def _exists(database: pw.Database, sql: str, key: uuid.UUID, what: str) -> None:
    if database.execute_sql(sql, {"key": str(key)}).fetchone() is None:
        raise NotFound(f"no {what} {key}")


def delete_thread(thread_id: uuid.UUID | str) -> None:
    """Delete a thread and, through the database's cascades, everything under it."""
    key = as_uuid(thread_id, "thread_id")
    with session("delete_thread", writes=True) as database, database.atomic():
        if not Thread.delete().where(Thread.thread_id == key).execute():
            raise NotFound(f"no thread {key}")


def add_message(
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
    """Append one message with its tool calls, selections, complexity and tokens, atomically.

    With ``message_id`` chosen by the caller, appending the same message again
    adds nothing and returns the stored one (see :func:`add_messages`).
    """
    details = {
        "tool_calls": tool_calls,
        "selected_tools": selected_tools,
        "complexity": complexity,
        "token_usage": token_usage,
    }
    batch = one_message(thread_id, entity, content, message_id, is_complete, details)
    stored = _write(batch, "add_message")
    assert batch.first is not None  # one message, streamed
    return written_message(batch.first, stored)


def one_message(
    thread_id: object,
    entity: object,
    content: object,
    message_id: object,
    is_complete: object,
    details: dict[str, Any],
) -> Batch:
    """The batch of ``add_message``'s one message (checked)."""
    new: dict[str, Any] = {
        "thread_id": thread_id,
        "entity": entity,
        "content": content,
        "is_complete": is_complete,
        **details,
    }
    if message_id is not None:
        new["message_id"] = message_id
    return Batch([new])  # type: ignore[list-item]  # checked by Batch


def written_message(row: tuple[Any, ...], stored: Mapping[uuid.UUID, dt.datetime]) -> Message:
    """The message of a batch row, once written (with its stored date if it was already there)."""
    key, created, text, thread, label, complete = row
    return Message(
        message_id=key,
        creation_date=stored.get(key, created),
        content=read_json_text(text),
        thread=thread,
        entity=Entity[label],
        is_complete=complete,
    )


def add_messages(messages: Iterable[NewMessage]) -> list[uuid.UUID]:
    """Append many messages (to one or many threads) in one transaction; their ids in order.

    Messages without a ``creation_date`` get increasing timestamps in the
    order given, so a conversation keeps its order. Rows are checked as they
    are streamed, in chunks: one bad message raises ``InvalidInput`` and
    nothing is written; a missing thread raises ``NotFound`` and nothing is
    written. A list is read as it is; another iterable is read into a list first.
    A message given with a ``message_id`` already stored with the same
    thread, entity, content and ``is_complete`` is left out (a retry adds nothing twice); the
    same id with other data is a ``Conflict`` and nothing is written.
    """
    batch = Batch(messages)
    _write(batch, "add_messages")
    return batch.ids


def add_message_details(
    message_id: uuid.UUID | str,
    *,
    tool_calls: Iterable[ToolCallIn] = (),
    selected_tools: Iterable[str] = (),
    complexity: ComplexityIn | None = None,
    token_usage: Iterable[TokenUsageIn] = (),
) -> Message:
    """Record tool calls, tool selections, a complexity estimation or token consumption
    for a stored message, atomically; the message is returned with all of its details.
    """
    details: NewMessage = {
        "tool_calls": tool_calls,
        "selected_tools": selected_tools,
        "complexity": complexity,
        "token_usage": token_usage,
    }
    key = as_uuid(message_id, "message_id")
    batch = Batch.details(key, details)
    with session("add_message_details", writes=True) as database:
        with database.atomic(), _constraint_errors():
            cursor = database.cursor()
            cursor.execute(LOCK_MESSAGE, (str(key),))
            if cursor.fetchone() is None:
                raise NotFound(f"no message {key}")
            for table, columns, rows in batch.child_rows():
                copy_rows(cursor, table, columns, rows)
        return _message(key)


def _write(batch: Batch, what: str) -> dict[uuid.UUID, dt.datetime]:
    """Write ``batch`` in one transaction; the creation dates of messages already stored."""
    if not len(batch):
        return {}
    with session(what, writes=True) as database, database.atomic(), _constraint_errors():
        cursor = database.cursor()
        cursor.execute(LOCK_THREADS, ([str(i) for i in batch.threads],))
        batch.check_threads(row[0] for row in cursor.fetchall())
        stored: dict[uuid.UUID, dt.datetime] = {}
        if batch.chosen:
            cursor.execute(EXISTING, ([str(i) for i in batch.chosen],))
            stored = batch.settle_existing(cursor.fetchall())
        for rows in batch.chunks():
            copy_rows(cursor, "messages", MESSAGE_COLUMNS, rows)
            for table, columns, children in batch.child_rows():
                copy_rows(cursor, table, columns, children)
        cursor.execute(TOUCH_THREADS, batch.touch_params())
        return stored


@contextmanager
def _constraint_errors() -> Iterator[None]:
    """Constraint violations as the caller's errors; the driver's errors as peewee's."""
    try:
        with pw.__exception_wrapper__:  # type: ignore[attr-defined]  # no stub
            yield
    except pw.IntegrityError as exc:
        error = caller_error(exc)
        if error is None:
            raise
        raise error from exc


def caller_error(exc: BaseException) -> Conflict | NotFound | None:
    """What a constraint violation of a write means for the caller, if it is theirs to fix."""
    code = sqlstate(exc)
    if code == UNIQUE_VIOLATION:
        return Conflict(conflict_message(constraint_name(exc)))
    if code == FOREIGN_KEY_VIOLATION:
        return NotFound("the thread or message was deleted meanwhile; nothing was written")
    return None


@overload
def list_messages(
    thread_id: uuid.UUID | str,
    *,
    limit: int = 100,
    after: MessageAfter = None,
    rows: Literal[False] = False,
) -> list[Message]: ...
@overload
def list_messages(
    thread_id: uuid.UUID | str, *, limit: int = 100, after: MessageAfter = None, rows: Literal[True]
) -> list[MessageRow]: ...
def list_messages(
    thread_id: uuid.UUID | str,
    *,
    limit: int = 100,
    after: MessageAfter = None,
    rows: bool = False,
) -> list[Message] | list[MessageRow]:
    """A page of a thread's messages, oldest first; pass the last one (or its id) as ``after``.

    ``rows=True`` returns :class:`~chatdb.api.pages.MessageRow` records instead of models.
    """
    key = as_uuid(thread_id, "thread_id")
    check_limit(limit)
    last = keyset(after, (Message, MessageRow))
    sql, params = pages.messages_page(key, limit, last)
    with session("list_messages", writes=False) as database:
        found = database.execute_sql(sql, params).fetchall()
        if not found:  # an empty page of a thread, or after a message, that does not exist
            if isinstance(last, uuid.UUID):
                _exists(database, pages.MESSAGE_EXISTS, last, "message")
            _exists(database, pages.THREAD_EXISTS, key, "thread")
    return pages.message_rows(found) if rows else pages.messages(found)


def get_message(message_id: uuid.UUID | str) -> Message:
    """The message with its details, or :class:`NotFound`.

    ``tool_calls`` (by id), ``tool_selections`` (by tool name),
    ``complexity_estimations`` and ``token_consumptions`` (by model, task,
    type) are lists.
    """
    key = as_uuid(message_id, "message_id")
    with session("get_message", writes=False):
        return _message(key)


def delete_message(message_id: uuid.UUID | str) -> None:
    """Delete a message and, through the database's cascades, its details."""
    key = as_uuid(message_id, "message_id")
    with session("delete_message", writes=True) as database, database.atomic():
        if not Message.delete().where(Message.message_id == key).execute():
            raise NotFound(f"no message {key}")


def _thread(key: uuid.UUID) -> Thread:
    found = list(queries.thread_by_id(key))
    if not found:
        raise NotFound(f"no thread {key}")
    thread: Thread = found[0]
    return thread


def _message(key: uuid.UUID) -> Message:
    details = [query for _, query in queries.message_details()]
    found = pw.prefetch(queries.message_by_id(key), *details)
    if not found:
        raise NotFound(f"no message {key}")
    message: Message = found[0]
    return message
