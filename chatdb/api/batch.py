"""A batch of new messages (and their children) checked and turned into SQL-ready rows.

Everything a batch can get wrong is found here, before any SQL: content the
search trigger would reject, enum labels, types and ranges, ids given twice.
What only the database can tell (a missing thread, a message id already
taken) is settled by the writer with the statements of this module, the same
for the sync and the async API.

A message may carry a caller-chosen ``message_id``: writing the same message
(same thread, entity, content and completeness) under that id again adds nothing, which is
what makes a retry after an unknown outcome safe; the same id with anything
else (another thread, entity, content or ``is_complete``) is a :class:`Conflict`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypedDict

from chatdb.api.checks import as_uuid, aware
from chatdb.errors import Conflict, InvalidInput, NotFound
from chatdb.schema.content import as_entity, prepare_content, to_json
from chatdb.schema.enums import Entity, ReasoningLevels, Task, TokenType, member
from chatdb.schema.models import utc_now

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
    """Checked, SQL-ready rows for new messages and their children (``InvalidInput`` if not)."""

    def __init__(self, messages: Iterable[NewMessage]):
        self.messages: list[tuple[Any, ...]] = []
        self.children: dict[str, list[tuple[Any, ...]]] = {table: [] for table, _ in CHILD_TABLES}
        self.latest_by_thread: dict[uuid.UUID, dt.datetime] = {}
        self.chosen: set[uuid.UUID] = set()  # ids given by the caller
        start = utc_now()
        if isinstance(messages, Mapping | str | bytes):
            raise InvalidInput("messages must be a list of message dicts, not one dict or text")
        for index, new in enumerate(messages):
            try:
                self._add(new, start + dt.timedelta(microseconds=index))
            except KeyError as exc:
                raise InvalidInput(f"message #{index}: missing required key {exc}") from None
            except (InvalidInput, ValueError, TypeError, AttributeError) as exc:
                raise InvalidInput(f"message #{index}: {exc}") from None

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

    def _add(self, new: NewMessage, default_date: dt.datetime) -> None:
        if not isinstance(new, Mapping):
            raise InvalidInput(f"a message is a dict, not {type(new).__name__}")
        entity = as_entity(new["entity"])
        thread_id = as_uuid(new["thread_id"], "thread_id")
        if new.get("message_id") is None:
            message_id = uuid.uuid4()
        else:
            message_id = as_uuid(new["message_id"], "message_id")
            if message_id in self.chosen:
                raise InvalidInput(f"message_id {message_id} is given twice in one batch")
            self.chosen.add(message_id)
        created = aware(new.get("creation_date") or default_date, "creation_date")
        complete = new.get("is_complete", True)
        if not isinstance(complete, bool):
            raise InvalidInput(f"is_complete must be a bool, not {type(complete).__name__}")
        text = prepare_content(entity, new["content"])
        self.messages.append((message_id, created, text, thread_id, entity.name, complete))
        latest = self.latest_by_thread.get(thread_id)
        self.latest_by_thread[thread_id] = created if latest is None else max(latest, created)
        self.add_children(message_id, new)

    def add_children(self, message_id: uuid.UUID, new: NewMessage) -> None:
        """Rows for the tool calls, selections, complexity and tokens of ``new``."""
        for call in new.get("tool_calls") or ():
            arguments = call.get("arguments", "{}")
            if not isinstance(arguments, str):
                arguments = to_json(arguments, "tool call arguments")
            validated = call.get("validated")
            if validated is not None and not isinstance(validated, bool):
                raise InvalidInput(f"tool call validated must be a bool or None, not {validated!r}")
            key, name = _text(call["id"], "tool call id"), _text(call["name"], "tool call name")
            self.children["tool_calls"].append((key, name, arguments, validated, message_id))
        tools = new.get("selected_tools") or ()
        if isinstance(tools, str):
            raise InvalidInput("selected_tools must be a list of tool names, not one string")
        for tool_name in tools:
            self.children["tool_selection"].append(
                (uuid.uuid4(), message_id, _text(tool_name, "selected tool name"))
            )
        complexity = new.get("complexity")
        if complexity is not None:
            reasoning = complexity.get("reasoning")
            score = complexity.get("complexity")
            if score is not None and (isinstance(score, bool) or not isinstance(score, int)):
                raise InvalidInput(f"complexity must be an integer or None, got {score!r}")
            self.children["complexity_estimation"].append(
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
            self.children["token_consumption"].append(
                (
                    uuid.uuid4(),
                    message_id,
                    member(TokenType, usage["type"], "TokenConsumption.type").name,
                    member(Task, usage["task"], "TokenConsumption.task").name,
                    count,
                    _text(usage["model"], "token usage model"),
                )
            )

    def thread_params(self) -> tuple[list[str], list[dt.datetime]]:
        """The parameters of :data:`TOUCH_THREADS` (and, the first, of :data:`LOCK_THREADS`)."""
        ids = sorted(self.latest_by_thread)
        return [str(i) for i in ids], [self.latest_by_thread[i] for i in ids]

    def check_threads(self, found: Iterable[object]) -> None:
        """``NotFound`` unless every thread of the batch is among ``found`` (locked rows)."""
        have = {uuid.UUID(str(thread_id)) for thread_id in found}
        missing = [str(i) for i in sorted(self.latest_by_thread) if i not in have]
        if missing:
            raise NotFound(f"no thread {', '.join(missing[:5])}; create it with create_thread()")

    def settle_existing(self, existing: Iterable[Sequence[Any]]) -> dict[uuid.UUID, dt.datetime]:
        """Leave out messages already stored under their chosen id; ``Conflict`` if they differ.

        ``existing`` holds the rows of :data:`EXISTING`; returns the creation
        dates of the messages left out, which the caller reports as written.
        """
        stored = {uuid.UUID(str(row[0])): row for row in existing}
        if not stored:
            return {}
        for message_id, _created, text, thread_id, label, complete in self.messages:
            row = stored.get(message_id)
            if row is None:
                continue
            same = (uuid.UUID(str(row[1])), row[2], row[3], row[5]) == (
                thread_id,
                label,
                text,
                complete,
            )
            if not same:
                raise Conflict(
                    f"message {message_id} already exists with another thread, entity, content "
                    "or is_complete; a message id names one message: choose a new id"
                )
        self.messages = [row for row in self.messages if row[0] not in stored]
        for table, rows in self.children.items():
            self.children[table] = [row for row in rows if _message_of(table, row) not in stored]
        return {message_id: row[4] for message_id, row in stored.items()}

    def child_rows(self) -> list[tuple[str, str, list[tuple[Any, ...]]]]:
        """(table, columns, rows) for each child table with rows to write."""
        return [
            (table, columns, self.children[table])
            for table, columns in CHILD_TABLES
            if self.children[table]
        ]


def _message_of(table: str, row: tuple[Any, ...]) -> uuid.UUID:
    return row[-1] if table in ("tool_calls", "complexity_estimation") else row[1]


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
