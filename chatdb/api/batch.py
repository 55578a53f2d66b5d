"""A batch of new messages (and their children) checked and turned into SQL-ready rows.

Everything a batch can get wrong is found here, before anything is committed:
content the search trigger would reject, enum labels, types and ranges, ids
given twice. What only the database can tell (a missing thread, a message id
already taken) is settled by the writer with the statements of this module,
the same for the sync and the async API.

A message may carry a caller-chosen ``message_id``: writing the same message
(same thread, entity, content and completeness) under that id again adds nothing, which is
what makes a retry after an unknown outcome safe; the same id with anything
else (another thread, entity, content or ``is_complete``) is a :class:`Conflict`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypedDict

from chatdb.api.checks import as_uuid, aware
from chatdb.errors import Conflict, InvalidInput, NotFound
from chatdb.schema.content import as_entity, prepare_content, to_json
from chatdb.schema.enums import Entity, ReasoningLevels, Task, TokenType, member
from chatdb.schema.models import utc_now

Row = tuple[Any, ...]
Children = dict[str, list[Row]]
CHUNK_ROWS = 5_000  # messages checked and written at a time (see Batch)
MESSAGE_COLUMNS = "message_id, creation_date, content, thread_id, entity, is_complete"
CHILD_TABLES = (
    ("tool_calls", "tool_call_id, name, arguments, validated, message_id"),
    ("tool_selection", "id, message_id, tool_name"),
    ("complexity_estimation", "id, complexity, model, reasoning, message_id"),
    ("token_consumption", "id, message_id, type, task, count, model"),
)
# Locking the threads first, in a fixed order, keeps a concurrent delete of a thread from
# racing the inserts, and serialises two appends of the same messages to one thread.
LOCK_THREADS = (
    "SELECT thread_id FROM threads WHERE thread_id = ANY(%s::uuid[]) ORDER BY thread_id FOR UPDATE"
)
TOUCH_THREADS = (
    "UPDATE threads SET update_date = GREATEST(threads.update_date, v.latest)"
    " FROM unnest(%s::uuid[], %s::timestamptz[]) AS v(thread_id, latest)"
    " WHERE threads.thread_id = v.thread_id"
)
EXISTING = (
    "SELECT message_id, thread_id, entity::text, content, creation_date, is_complete FROM messages"
    " WHERE message_id = ANY(%s::uuid[])"
)
LOCK_MESSAGE = "SELECT message_id FROM messages WHERE message_id = %s FOR KEY SHARE"


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
    """One message for ``add_messages``: ``thread_id``, ``entity``, ``content`` required.

    ``message_id`` (optional) makes the append idempotent on it.
    """

    message_id: uuid.UUID | str
    thread_id: uuid.UUID | str
    entity: Entity | str
    content: Mapping[str, Any] | str
    is_complete: bool
    creation_date: dt.datetime
    tool_calls: Iterable[ToolCallIn]
    selected_tools: Iterable[str]
    complexity: ComplexityIn | None
    token_usage: Iterable[TokenUsageIn]


class Batch:
    """New messages (and their children) as SQL-ready rows, checked as they are streamed.

    Building a batch checks its first :data:`CHUNK_ROWS` messages whole (a batch
    that small is refused before any SQL, as always) and reads only the
    ``thread_id`` and ``message_id`` of the rest (what the writer must lock and
    look up first); :meth:`chunks` checks and converts the rest a chunk at a
    time while ``COPY`` sends them, so the server writes one chunk while Python
    checks the next, and at most one chunk's rows are held at once. A bad
    message past the first chunk raises ``InvalidInput`` (naming its index) in
    the middle of the stream: the writer's transaction is rolled back, and
    nothing is written.
    """

    def __init__(self, messages: Iterable[NewMessage]):
        if isinstance(messages, Mapping | str | bytes):
            raise InvalidInput("messages must be a list of message dicts, not one dict or text")
        self._new: Sequence[NewMessage] = (
            messages if isinstance(messages, Sequence) else list(messages)
        )
        self.children: dict[str, list[tuple[Any, ...]]] = {table: [] for table, _ in CHILD_TABLES}
        self.latest_by_thread: dict[uuid.UUID, dt.datetime] = {}
        self.chosen: set[uuid.UUID] = set()  # ids given by the caller
        self.ids: list[uuid.UUID] = []  # of the messages streamed so far, in order
        self.first: tuple[Any, ...] | None = None  # the first message row (of add_message)
        self._stored: dict[uuid.UUID, Sequence[Any]] = {}
        self._start = utc_now()
        threads: set[uuid.UUID] = set()
        for index, new in enumerate(self._new):
            with _about(index):
                if not isinstance(new, Mapping):
                    raise InvalidInput(f"a message is a dict, not {type(new).__name__}")
                threads.add(as_uuid(new["thread_id"], "thread_id"))
                if new.get("message_id") is not None:
                    chosen = as_uuid(new["message_id"], "message_id")
                    if chosen in self.chosen:
                        raise InvalidInput(f"message_id {chosen} is given twice in one batch")
                    self.chosen.add(chosen)
        self.threads = sorted(threads)
        self._head = list(self._checked(0, min(CHUNK_ROWS, len(self._new))))

    def __len__(self) -> int:
        return len(self._new)

    @classmethod
    def details(cls, message_id: uuid.UUID | str, details: NewMessage) -> Batch:
        """The child rows of an existing message (no message row)."""
        batch = cls(())
        try:
            batch.add_children(as_uuid(message_id, "message_id"), details)
        except KeyError as exc:
            raise InvalidInput(f"missing required key {exc}") from None
        except (ValueError, TypeError, AttributeError) as exc:
            raise InvalidInput(str(exc)) from None
        return batch

    def chunks(self) -> Iterator[Iterator[tuple[Any, ...]]]:
        """The message rows to write, :data:`CHUNK_ROWS` at a time, each checked as it is read.

        Write each chunk's rows, then its :meth:`child_rows`, before taking the next.
        """
        if self._head:
            yield self._emitted(self._head)
        for first in range(CHUNK_ROWS, len(self._new), CHUNK_ROWS):
            yield self._emitted(self._checked(first, min(first + CHUNK_ROWS, len(self._new))))

    def check_rest(self) -> None:
        """Check the messages past the first chunk without writing them."""
        for _checked in self._checked(CHUNK_ROWS, len(self._new)):
            pass

    def _checked(self, first: int, end: int) -> Iterator[tuple[tuple[Any, ...], Children]]:
        for index in range(first, end):
            with _about(index):
                yield self._row(self._new[index], self._start + dt.timedelta(microseconds=index))

    def _emitted(self, checked: Iterable[tuple[tuple[Any, ...], Children]]) -> Iterator[Row]:
        """The rows to write of ``checked`` (not those stored already), their children kept."""
        for row, children in checked:
            message_id, created, _text, thread_id, _label, _complete = row
            self.ids.append(message_id)
            if self.first is None:
                self.first = row
            if message_id in self._stored:
                _same_as_stored(row, self._stored[message_id])
                continue
            latest = self.latest_by_thread.get(thread_id)
            self.latest_by_thread[thread_id] = created if latest is None else max(latest, created)
            for table, rows in children.items():
                self.children[table] += rows
            yield row

    def _row(self, new: NewMessage, default_date: dt.datetime) -> tuple[Row, Children]:
        """The row of ``new`` and the rows of its children."""
        entity = as_entity(new["entity"])
        thread_id = as_uuid(new["thread_id"], "thread_id")
        chosen = new.get("message_id")
        message_id = uuid.uuid4() if chosen is None else as_uuid(chosen, "message_id")
        created = aware(new.get("creation_date") or default_date, "creation_date")
        complete = new.get("is_complete", True)
        if not isinstance(complete, bool):
            raise InvalidInput(f"is_complete must be a bool, not {type(complete).__name__}")
        text = prepare_content(entity, new["content"])
        return (message_id, created, text, thread_id, entity.name, complete), children(
            message_id, new
        )

    def add_children(self, message_id: uuid.UUID, new: NewMessage) -> None:
        """Rows for the tool calls, selections, complexity and tokens of ``new``."""
        for table, rows in children(message_id, new).items():
            self.children[table] += rows

    def touch_params(self) -> tuple[list[str], list[dt.datetime]]:
        """The parameters of :data:`TOUCH_THREADS`, once every chunk is written."""
        ids = sorted(self.latest_by_thread)
        return [str(i) for i in ids], [self.latest_by_thread[i] for i in ids]

    def check_threads(self, found: Iterable[object]) -> None:
        """``NotFound`` unless every thread of the batch is among ``found`` (locked rows).

        A bad message is the caller's first problem: ``InvalidInput`` comes first.
        """
        have = {uuid.UUID(str(thread_id)) for thread_id in found}
        missing = [str(i) for i in self.threads if i not in have]
        if missing:
            self.check_rest()
            raise NotFound(f"no thread {', '.join(missing[:5])}; create it with create_thread()")

    def settle_existing(self, existing: Iterable[Sequence[Any]]) -> dict[uuid.UUID, dt.datetime]:
        """Remember the messages already stored under their chosen id, to leave them out.

        ``existing`` holds the rows of :data:`EXISTING`; returns their creation
        dates, which the caller reports as written. The streamed rows are
        compared with them (``Conflict`` if they differ).
        """
        self._stored = {uuid.UUID(str(row[0])): row for row in existing}
        return {message_id: row[4] for message_id, row in self._stored.items()}

    def child_rows(self) -> list[tuple[str, str, list[tuple[Any, ...]]]]:
        """(table, columns, rows) for each child table with rows to write; taken, not kept."""
        taken = [
            (table, columns, self.children[table])
            for table, columns in CHILD_TABLES
            if self.children[table]
        ]
        self.children = {table: [] for table, _ in CHILD_TABLES}
        return taken


def children(message_id: uuid.UUID, new: NewMessage) -> Children:
    """The rows of the tool calls, selections, complexity and tokens of ``new``, by table."""
    made: Children = {table: [] for table, _ in CHILD_TABLES}
    for call in new.get("tool_calls") or ():
        arguments = call.get("arguments", "{}")
        if not isinstance(arguments, str):
            arguments = to_json(arguments, "tool call arguments")
        validated = call.get("validated")
        if validated is not None and not isinstance(validated, bool):
            raise InvalidInput(f"tool call validated must be a bool or None, not {validated!r}")
        key, name = _text(call["id"], "tool call id"), _text(call["name"], "tool call name")
        made["tool_calls"].append((key, name, arguments, validated, message_id))
    tools = new.get("selected_tools") or ()
    if isinstance(tools, str):
        raise InvalidInput("selected_tools must be a list of tool names, not one string")
    for tool_name in tools:
        made["tool_selection"].append(
            (uuid.uuid4(), message_id, _text(tool_name, "selected tool name"))
        )
    complexity = new.get("complexity")
    if complexity is not None:
        reasoning = complexity.get("reasoning")
        score = complexity.get("complexity")
        if score is not None and (isinstance(score, bool) or not isinstance(score, int)):
            raise InvalidInput(f"complexity must be an integer or None, got {score!r}")
        made["complexity_estimation"].append(
            (
                uuid.uuid4(),
                score,
                _text(complexity["model"], "complexity model"),
                None
                if reasoning is None
                else member(ReasoningLevels, reasoning, "ComplexityEstimation.reasoning").name,
                message_id,
            )
        )
    for usage in new.get("token_usage") or ():
        count = usage["count"]
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count < 1 << 31:
            raise InvalidInput(f"token count must be a non-negative integer, got {count!r}")
        made["token_consumption"].append(
            (
                uuid.uuid4(),
                message_id,
                member(TokenType, usage["type"], "TokenConsumption.type").name,
                member(Task, usage["task"], "TokenConsumption.task").name,
                count,
                _text(usage["model"], "token usage model"),
            )
        )
    return made


def _same_as_stored(row: tuple[Any, ...], stored: Sequence[Any]) -> None:
    """``Conflict`` unless ``row`` is the message stored under its id (a retry)."""
    message_id, _created, text, thread_id, label, complete = row
    if (uuid.UUID(str(stored[1])), stored[2], stored[3], stored[5]) != (
        thread_id,
        label,
        text,
        complete,
    ):
        raise Conflict(
            f"message {message_id} already exists with another thread, entity, content "
            "or is_complete; a message id names one message: choose a new id"
        )


@contextmanager
def _about(index: int) -> Iterator[None]:
    """Errors of the message at ``index`` as ``InvalidInput`` naming it."""
    try:
        yield
    except KeyError as exc:
        raise InvalidInput(f"message #{index}: missing required key {exc}") from None
    except InvalidInput as exc:
        raise InvalidInput(f"message #{index}: {exc}") from None
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidInput(f"message #{index}: {exc}") from None


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string, not {type(value).__name__}")
    return value


def conflict_message(constraint: str | None) -> str:
    """What a unique violation on ``constraint`` means for the caller."""
    if constraint and "tool_calls" in constraint:
        return (
            "a tool call id of this message is already used (tool call ids are unique across "
            "the database); give each tool call its own id"
        )
    return "a message id of this batch is already used by another message; choose a new id"
