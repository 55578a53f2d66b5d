"""Pages of threads and messages: one statement each, and the light rows they can be read as.

A page is one statement written once for both APIs, keyset included: a page
after a thread or message given by its id reads the keyset in a subquery of
the same statement, not in a round trip of its own. Its rows become the
models (``Thread``, ``Message``, as the API has always returned) or, with
``rows=True``, :class:`ThreadRow` and :class:`MessageRow`: frozen records
that cost a fraction of a model to build, whose ``content`` is parsed only
when read (``raw_content`` is the stored text, as is, for a caller that
forwards it). Listing a long thread mostly costs the models and the JSON
parsing; the light rows skip both.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import peewee as pw

from chatdb.schema.content import read_json_text
from chatdb.schema.enums import Entity
from chatdb.schema.models import Message, Thread

M = TypeVar("M", bound=pw.Model)

_THREADS = (
    "SELECT thread_id, vlab_id, project_id, title, creation_date, update_date, user_id"
    " FROM threads WHERE user_id = %(owner)s{after}"
    " ORDER BY update_date DESC, thread_id DESC LIMIT %(limit)s"
)
_MESSAGES = (
    "SELECT message_id, creation_date, content, thread_id, entity, is_complete"
    " FROM messages WHERE thread_id = %(thread)s{after}"
    " ORDER BY creation_date, message_id LIMIT %(limit)s"
)
THREADS_PAGE = _THREADS.format(after="")
THREADS_AFTER_ROW = _THREADS.format(after=" AND (update_date, thread_id) < (%(date)s, %(key)s)")
THREADS_AFTER_ID = _THREADS.format(
    after=" AND (update_date, thread_id) < "
    "(SELECT update_date, thread_id FROM threads WHERE thread_id = %(key)s)"
)
MESSAGES_PAGE = _MESSAGES.format(after="")
MESSAGES_AFTER_ROW = _MESSAGES.format(
    after=" AND (creation_date, message_id) > (%(date)s, %(key)s)"
)
MESSAGES_AFTER_ID = _MESSAGES.format(
    after=" AND (creation_date, message_id) > "
    "(SELECT creation_date, message_id FROM messages WHERE message_id = %(key)s)"
)
THREAD_EXISTS = "SELECT 1 FROM threads WHERE thread_id = %(key)s"
MESSAGE_EXISTS = "SELECT 1 FROM messages WHERE message_id = %(key)s"


@dataclass(frozen=True, slots=True)
class ThreadRow:
    """A thread as ``list_threads(..., rows=True)`` returns it: its columns, nothing more."""

    thread_id: uuid.UUID
    vlab_id: uuid.UUID | None
    project_id: uuid.UUID | None
    title: str
    creation_date: dt.datetime
    update_date: dt.datetime
    user_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class MessageRow:
    """A message as ``list_messages(..., rows=True)`` returns it; ``content`` parsed on reading."""

    message_id: uuid.UUID
    creation_date: dt.datetime
    raw_content: str
    thread_id: uuid.UUID
    entity: Entity
    is_complete: bool

    @property
    def content(self) -> dict[str, Any] | str | None:
        """The content as ``Message.content`` holds it: a JSON object as a dict, else text."""
        return read_json_text(self.raw_content)


def threads_page(
    owner: uuid.UUID, limit: int, after: Thread | ThreadRow | uuid.UUID | None
) -> tuple[str, dict[str, object]]:
    """The statement of a page of ``owner``'s threads after ``after`` (a thread or its id)."""
    params: dict[str, object] = {"owner": str(owner), "limit": limit}
    if after is None:
        return THREADS_PAGE, params
    if isinstance(after, uuid.UUID):
        return THREADS_AFTER_ID, {**params, "key": str(after)}
    return THREADS_AFTER_ROW, {**params, "date": after.update_date, "key": str(after.thread_id)}


def messages_page(
    thread: uuid.UUID, limit: int, after: Message | MessageRow | uuid.UUID | None
) -> tuple[str, dict[str, object]]:
    """The statement of a page of ``thread``'s messages after ``after`` (a message or its id)."""
    params: dict[str, object] = {"thread": str(thread), "limit": limit}
    if after is None:
        return MESSAGES_PAGE, params
    if isinstance(after, uuid.UUID):
        return MESSAGES_AFTER_ID, {**params, "key": str(after)}
    return MESSAGES_AFTER_ROW, {
        **params,
        "date": after.creation_date,
        "key": str(after.message_id),
    }


def thread_rows(rows: Iterable[Sequence[Any]]) -> list[ThreadRow]:
    """The rows of a threads page (psycopg2's, or :func:`standard`'s) as records."""
    return [ThreadRow(*row) for row in rows]


def message_rows(rows: Iterable[Sequence[Any]]) -> list[MessageRow]:
    """The rows of a messages page (psycopg2's, or :func:`standard`'s) as records."""
    entities = Entity.__members__
    return [MessageRow(a, b, c, d, entities[e], f) for a, b, c, d, e, f in rows]


def threads(rows: Iterable[Sequence[Any]]) -> list[Thread]:
    names = [field.name for field in Thread._meta.sorted_fields]
    return [model(Thread, dict(zip(names, row, strict=True))) for row in rows]


def messages(rows: Iterable[Sequence[Any]]) -> list[Message]:
    """Messages of a page's rows (the search vector, never selected, is left unset)."""
    entities = Entity.__members__
    return [
        model(
            Message,
            {
                "message_id": a,
                "creation_date": b,
                "content": read_json_text(c),
                "thread": d,
                "entity": entities[e],
                "is_complete": f,
            },
        )
        for a, b, c, d, e, f in rows
    ]


def model(model: type[M], data: dict[str, Any]) -> M:
    """An instance of ``model`` holding ``data`` (read from the database: nothing dirty),
    built as Peewee builds the rows of a select."""
    instance = model(__no_default__=1)
    instance.__data__ = data
    return instance


def standard(rows: Iterable[Sequence[Any]]) -> list[list[Any]]:
    """Rows of another driver (asyncpg) with the standard library's UUIDs, as psycopg2 gives."""
    return [[standard_uuid(value) for value in row] for row in rows]


def standard_uuid(value: Any) -> Any:
    """A driver's own UUID type (asyncpg's) as the standard library's; anything else as is."""
    if value is None or type(value) is uuid.UUID:
        return value
    return uuid.UUID(int=value.int) if isinstance(value, uuid.UUID) else value
