"""Writing and reading chats without writing SQL.

Appends go through one path, :func:`add_messages`: everything is checked in
Python first (content the search trigger would reject, enum labels, thread
existence), then the message rows and their children are streamed with
``COPY`` in one transaction, so a bulk append costs less than raw multi-row
inserts. Reading pages with keysets (the last row of a page is the cursor of
the next), which the head schema's indexes serve directly.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, TypedDict

import peewee as pw
from psycopg2.extras import execute_values

from chatdb.db.copy import copy_rows
from chatdb.schema.content import as_entity, prepare_content, to_json
from chatdb.schema.enums import Entity, ReasoningLevels, Task, TokenType, member
from chatdb.schema.models import Message, Thread, ToolCall, utc_now

PAGE_SIZE = 1000  # threads per UPDATE statement in a bulk append
MESSAGE_COLUMNS = "message_id, creation_date, content, thread_id, entity, is_complete"


class ToolCallIn(TypedDict, total=False):
    """A tool call the assistant made: ``id`` and ``name`` required."""

    id: str
    name: str
    arguments: str | Mapping[str, Any]
    validated: bool | None


class ComplexityIn(TypedDict, total=False):
    """The complexity estimation of a message: ``model`` required."""

    model: str
    complexity: int | None
    reasoning: ReasoningLevels | str | None


class TokenUsageIn(TypedDict):
    """Tokens one LLM call consumed."""

    model: str
    task: Task | str
    type: TokenType | str
    count: int


class NewMessage(TypedDict, total=False):
    """One message for :func:`add_messages`: ``thread_id``, ``entity``, ``content`` required."""

    thread_id: uuid.UUID | str
    entity: Entity | str
    content: Mapping[str, Any] | str
    is_complete: bool
    creation_date: dt.datetime
    tool_calls: Iterable[ToolCallIn]
    selected_tools: Iterable[str]
    complexity: ComplexityIn | None
    token_usage: Iterable[TokenUsageIn]


def create_thread(
    user_id: uuid.UUID | str,
    title: str = "New chat",
    vlab_id: uuid.UUID | str | None = None,
    project_id: uuid.UUID | str | None = None,
) -> Thread:
    """A new, empty thread of ``user_id``."""
    return Thread.create(
        user_id=as_uuid(user_id, "user_id"),
        title=title,
        vlab_id=None if vlab_id is None else as_uuid(vlab_id, "vlab_id"),
        project_id=None if project_id is None else as_uuid(project_id, "project_id"),
    )


def add_message(
    thread_id: uuid.UUID | str,
    entity: Entity | str,
    content: Mapping[str, Any] | str,
    *,
    is_complete: bool = True,
    tool_calls: Iterable[ToolCallIn] = (),
    selected_tools: Iterable[str] = (),
    complexity: ComplexityIn | None = None,
    token_usage: Iterable[TokenUsageIn] = (),
) -> Message:
    """Append one message with its tool calls, selections, complexity and tokens, atomically."""
    new: NewMessage = {
        "thread_id": thread_id,
        "entity": entity,
        "content": content,
        "is_complete": is_complete,
        "tool_calls": tool_calls,
        "selected_tools": selected_tools,
        "complexity": complexity,
        "token_usage": token_usage,
    }
    rows = _Rows([new])
    _write(rows)
    message_id, creation_date, text, thread, label, complete = rows.messages[0]
    return Message(
        message_id=message_id,
        creation_date=creation_date,
        content=text,
        thread=thread,
        entity=Entity[label],
        is_complete=complete,
    )


def add_messages(messages: Iterable[NewMessage]) -> list[uuid.UUID]:
    """Append many messages (to one or many threads) in one transaction; their ids in order.

    Messages without a ``creation_date`` get increasing timestamps in the
    order given, so a conversation keeps its order. Every row is checked
    before any SQL runs: one bad message raises ``ValueError`` and nothing is
    written. A missing thread raises ``LookupError`` and nothing is written.
    """
    rows = _Rows(messages)
    _write(rows)
    return [row[0] for row in rows.messages]


def _write(rows: _Rows) -> None:
    if not rows.messages:
        return
    database = Message._meta.database
    # Peewee's wrapper turns driver errors into peewee's (IntegrityError...), as for models.
    with database.atomic(), pw.__exception_wrapper__:  # type: ignore[attr-defined]  # no stub
        cursor = database.cursor()
        _touch_threads(cursor, rows.latest_by_thread)
        copy_rows(cursor, "messages", MESSAGE_COLUMNS, rows.messages)
        for table, columns, values in rows.children():
            copy_rows(cursor, table, columns, values)


class _Rows:
    """Checked, SQL-ready rows for a batch of new messages and their children."""

    def __init__(self, messages: Iterable[NewMessage]):
        self.messages: list[tuple[Any, ...]] = []
        self.tool_calls: list[tuple[Any, ...]] = []
        self.selections: list[tuple[Any, ...]] = []
        self.complexities: list[tuple[Any, ...]] = []
        self.tokens: list[tuple[Any, ...]] = []
        self.latest_by_thread: dict[uuid.UUID, dt.datetime] = {}
        start = utc_now()
        for index, new in enumerate(messages):
            try:
                self._add(new, uuid.uuid4(), start + dt.timedelta(microseconds=index))
            except KeyError as exc:
                raise ValueError(f"message #{index}: missing required key {exc}") from None
            except (ValueError, TypeError) as exc:
                raise ValueError(f"message #{index}: {exc}") from None

    def _add(self, new: NewMessage, message_id: uuid.UUID, default_date: dt.datetime) -> None:
        entity = as_entity(new["entity"])
        thread_id = as_uuid(new["thread_id"], "thread_id")
        created = new.get("creation_date") or default_date
        if created.tzinfo is None:
            raise ValueError("creation_date must be timezone-aware")
        text = prepare_content(entity, new["content"])
        self.messages.append(
            (message_id, created, text, thread_id, entity.name, bool(new.get("is_complete", True)))
        )
        latest = self.latest_by_thread.get(thread_id)
        self.latest_by_thread[thread_id] = created if latest is None else max(latest, created)
        for call in new.get("tool_calls") or ():
            arguments = call.get("arguments", "{}")
            if not isinstance(arguments, str):
                arguments = to_json(arguments, "tool call arguments")
            self.tool_calls.append(
                (str(call["id"]), str(call["name"]), arguments, call.get("validated"), message_id)
            )
        for tool_name in new.get("selected_tools") or ():
            self.selections.append((uuid.uuid4(), message_id, str(tool_name)))
        complexity = new.get("complexity")
        if complexity is not None:
            reasoning = complexity.get("reasoning")
            self.complexities.append(
                (
                    uuid.uuid4(),
                    complexity.get("complexity"),
                    str(complexity["model"]),
                    None
                    if reasoning is None
                    else member(ReasoningLevels, reasoning, "ComplexityEstimation.reasoning").name,
                    message_id,
                )
            )
        for usage in new.get("token_usage") or ():
            count = usage["count"]
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise ValueError(f"token count must be a non-negative integer, got {count!r}")
            self.tokens.append(
                (
                    uuid.uuid4(),
                    message_id,
                    member(TokenType, usage["type"], "TokenConsumption.type").name,
                    member(Task, usage["task"], "TokenConsumption.task").name,
                    count,
                    str(usage["model"]),
                )
            )

    def children(self) -> Iterable[tuple[str, str, list[tuple[Any, ...]]]]:
        """(table, columns, rows) for each child table with rows to write."""
        tables = (
            ("tool_calls", "tool_call_id, name, arguments, validated, message_id", self.tool_calls),
            ("tool_selection", "id, message_id, tool_name", self.selections),
            (
                "complexity_estimation",
                "id, complexity, model, reasoning, message_id",
                self.complexities,
            ),
            ("token_consumption", "id, message_id, type, task, count, model", self.tokens),
        )
        return [table for table in tables if table[2]]


def _touch_threads(cursor: Any, latest_by_thread: Mapping[uuid.UUID, dt.datetime]) -> None:
    """Move each thread's ``update_date`` to its newest message; LookupError if one is missing.

    Locking the thread rows first (in a fixed order) also keeps a concurrent
    delete of the thread from racing the inserts.
    """
    ids = sorted(latest_by_thread)
    cursor.execute(
        "SELECT thread_id FROM threads WHERE thread_id = ANY(%s::uuid[]) ORDER BY thread_id"
        " FOR UPDATE",
        ([str(i) for i in ids],),
    )
    found = {uuid.UUID(str(row[0])) for row in cursor.fetchall()}
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise LookupError(f"no thread {', '.join(missing[:5])}; create it with create_thread()")
    execute_values(
        cursor,
        "UPDATE threads SET update_date = GREATEST(threads.update_date, v.latest)"
        " FROM (VALUES %s) AS v(thread_id, latest) WHERE threads.thread_id = v.thread_id",
        [(thread_id, latest_by_thread[thread_id]) for thread_id in ids],
        template="(%s::uuid, %s::timestamptz)",
        page_size=PAGE_SIZE,
    )


def list_threads(
    user_id: uuid.UUID | str, *, limit: int = 20, after: Thread | None = None
) -> list[Thread]:
    """A page of ``user_id``'s threads, most recently updated first.

    Pass the last thread of a page as ``after`` to get the next page.
    """
    query = Thread.select().where(Thread.user_id == as_uuid(user_id, "user_id"))
    if after is not None:
        query = query.where(
            pw.Tuple(Thread.update_date, Thread.thread_id)
            < pw.Tuple(after.update_date, after.thread_id)
        )
    return list(
        query.order_by(Thread.update_date.desc(), Thread.thread_id.desc()).limit(check_limit(limit))
    )


def list_messages(
    thread_id: uuid.UUID | str, *, limit: int = 100, after: Message | None = None
) -> list[Message]:
    """A page of a thread's messages, oldest first; pass the last one as ``after`` for more."""
    query = Message.select().where(Message.thread == as_uuid(thread_id, "thread_id"))
    if after is not None:
        query = query.where(
            pw.Tuple(Message.creation_date, Message.message_id)
            > pw.Tuple(after.creation_date, after.message_id)
        )
    return list(query.order_by(Message.creation_date, Message.message_id).limit(check_limit(limit)))


def get_message(message_id: uuid.UUID | str) -> Message | None:
    """The message with its tool calls (``message.tool_calls`` is a list), or None."""
    query = Message.select().where(Message.message_id == as_uuid(message_id, "message_id"))
    found = pw.prefetch(query, ToolCall.select().order_by(ToolCall.tool_call_id))
    return found[0] if found else None


def delete_thread(thread_id: uuid.UUID | str) -> bool:
    """Delete a thread and, through the database's cascades, everything under it."""
    return Thread.delete().where(Thread.thread_id == as_uuid(thread_id, "thread_id")).execute() > 0


def as_uuid(value: uuid.UUID | str, name: str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValueError(f"{name} {value!r} is not a UUID") from None


def check_limit(limit: int) -> int:
    """``limit`` if it is a positive integer (a page size); ``ValueError`` otherwise."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    return limit
