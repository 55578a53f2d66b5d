"""The data API's contract: one error family, one rule for "not found", complete CRUD.

Everything here runs on a real database of the test's own (the plugin's
``chatdb_database``), through the module-level functions; the explicit
``Database`` objects are pinned in ``test_databases.py``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import uuid

import pytest

import chatdb
from chatdb import errors
from chatdb.api import batch
from chatdb.api.pages import ThreadRow
from tests.chat_support import TABLES, chat  # noqa: F401

USER = uuid.UUID("00000000-0000-4000-8000-000000000002")
MISSING = uuid.UUID("00000000-0000-4000-8000-00000000dead")


def count(database, table: str) -> int:
    return database.execute_sql(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_every_error_is_a_chatdb_error_exported_from_chatdb():
    family = [
        value
        for value in vars(errors).values()
        if inspect.isclass(value) and issubclass(value, Exception)
    ]
    assert errors.ChatdbError in family and len(family) >= 12
    for error in family:
        assert issubclass(error, chatdb.ChatdbError), error
        assert getattr(chatdb, error.__name__) is error, error
        assert error.__name__ in chatdb.__all__
    # The data API raised these before the family existed; code catching them still works.
    assert issubclass(chatdb.NotFound, LookupError)
    assert issubclass(chatdb.InvalidInput, ValueError)


# -- one rule for "not found" --------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: chatdb.get_thread(MISSING),
        lambda: chatdb.update_thread(MISSING, title="x"),
        lambda: chatdb.delete_thread(MISSING),
        lambda: chatdb.list_messages(MISSING),
        lambda: chatdb.add_message(MISSING, "USER", {"content": "x"}),
        lambda: chatdb.add_messages([{"thread_id": MISSING, "entity": "USER", "content": "{}"}]),
        lambda: chatdb.get_message(MISSING),
        lambda: chatdb.delete_message(MISSING),
        lambda: chatdb.add_message_details(MISSING, selected_tools=["t"]),
        lambda: chatdb.token_usage(thread_id=MISSING),
        lambda: chatdb.search_messages("neuron", thread_id=MISSING),
        lambda: chatdb.list_threads(USER, after=MISSING),
        lambda: chatdb.list_messages(MISSING, after=MISSING),
    ],
)
def test_a_missing_thread_or_message_is_not_found_whatever_the_call(chat, call):  # noqa: F811
    with pytest.raises(chatdb.NotFound, match=str(MISSING)):
        call()
    for table in TABLES:
        assert count(chat, table) == 0, table


# -- caller-fixable problems are InvalidInput or Conflict, never a raw error -------------------


@pytest.mark.parametrize(
    ("call", "problem"),
    [
        (lambda t: chatdb.token_usage(since="2025-01-01"), "since must be a timezone-aware"),
        (lambda t: chatdb.token_usage(until=dt.datetime(2025, 1, 1)), "until must be"),
        (lambda t: chatdb.list_threads(USER, after=12), "after 12 is not a UUID"),
        (lambda t: chatdb.list_messages(t.thread_id, after=3.5), "after 3.5 is not a UUID"),
        (lambda t: chatdb.list_threads(USER, limit=10**20), "limit"),
        (lambda t: chatdb.list_messages(t.thread_id, limit="5"), "limit"),
        (lambda t: chatdb.search_messages("x", offset=10**20), "offset"),
        (lambda t: chatdb.search_messages(b"bytes"), "query must be a string"),
        (lambda t: chatdb.search_messages("x", timeout=1e12), "timeout"),
        (lambda t: chatdb.get_message(42), "message_id 42 is not a UUID"),
        (lambda t: chatdb.create_thread(USER, title=None), "title must be a string"),
        (lambda t: chatdb.update_thread(t.thread_id, title="a\x00b"), "NUL"),
        (lambda t: chatdb.add_messages({"thread_id": t.thread_id}), "a list of message dicts"),
        (lambda t: chatdb.add_messages(["text"]), "a message is a dict"),
        (
            lambda t: chatdb.add_message(t.thread_id, "USER", {}, is_complete="yes"),
            "is_complete",
        ),
        (
            lambda t: chatdb.add_message(t.thread_id, "TOOL", "x", tool_calls=[{"id": 1}]),
            "tool call id must be a string",
        ),
        (
            lambda t: chatdb.add_message(t.thread_id, "TOOL", "x", selected_tools="search"),
            "selected_tools",
        ),
        (
            lambda t: chatdb.add_message(t.thread_id, "TOOL", "x", complexity={"model": 5}),
            "complexity model",
        ),
        (
            lambda t: chatdb.add_message(
                t.thread_id, "TOOL", "x", complexity={"model": "m"}, token_usage=[{"count": 1}]
            ),
            "missing required key",
        ),
        (lambda t: chatdb.add_message(t.thread_id, "ROBOT", "x"), "Message.entity"),
        (lambda t: chatdb.add_message_details(t.thread_id, token_usage=[{}]), "missing"),
        (lambda t: chatdb.reindex_search(batch_size=0), "batch size"),
        (lambda t: chatdb.reindex_search(after="nope"), "after 'nope' is not a UUID"),
    ],
)
def test_bad_arguments_are_invalid_input_and_change_nothing(chat, call, problem):  # noqa: F811
    thread = chatdb.create_thread(USER)
    with pytest.raises(chatdb.InvalidInput, match=problem):
        call(thread)
    assert count(chat, "messages") == 0 and count(chat, "threads") == 1


def test_a_duplicate_tool_call_id_is_a_conflict_and_writes_nothing(chat):  # noqa: F811
    thread = chatdb.create_thread(USER)
    chatdb.add_message(thread.thread_id, "AI_TOOL", "{}", tool_calls=[{"id": "c", "name": "t"}])
    with pytest.raises(chatdb.Conflict, match="tool call id"):
        chatdb.add_message(thread.thread_id, "AI_TOOL", "{}", tool_calls=[{"id": "c", "name": "u"}])
    message = chatdb.list_messages(thread.thread_id)[0]
    with pytest.raises(chatdb.Conflict, match="tool call id"):
        chatdb.add_message_details(message.message_id, tool_calls=[{"id": "c", "name": "v"}])
    assert count(chat, "messages") == 1 and count(chat, "tool_calls") == 1


# -- complete CRUD, data round-tripping unchanged ----------------------------------------------


def test_threads_get_rename_list_delete(chat):  # noqa: F811
    thread = chatdb.create_thread(USER, "first title", vlab_id=USER)
    got = chatdb.get_thread(str(thread.thread_id))
    assert (got.thread_id, got.title, got.vlab_id, got.project_id) == (
        thread.thread_id,
        "first title",
        USER,
        None,
    )
    renamed = chatdb.update_thread(thread.thread_id, title="second title")
    assert renamed.title == chatdb.get_thread(thread.thread_id).title == "second title"
    assert renamed.update_date == got.update_date  # renaming does not reorder the list
    assert [t.title for t in chatdb.list_threads(USER)] == ["second title"]
    chatdb.delete_thread(thread.thread_id)
    assert chatdb.list_threads(USER) == []


def test_pages_continue_from_a_row_or_its_id(chat):  # noqa: F811
    threads = [chatdb.create_thread(USER, f"t{n}") for n in range(5)]
    ids = chatdb.add_messages(
        [{"thread_id": threads[0].thread_id, "entity": "TOOL", "content": str(n)} for n in range(5)]
    )
    first = chatdb.list_threads(USER, limit=2)
    assert chatdb.list_threads(USER, after=first[-1].thread_id) == chatdb.list_threads(
        USER, after=first[-1]
    )
    assert [m.message_id for m in chatdb.list_messages(threads[0].thread_id, after=ids[1])] == ids[
        2:
    ]
    assert chatdb.list_messages(threads[1].thread_id) == []  # an empty thread is no error


def test_light_rows_hold_what_the_models_hold_and_page_alike(chat):  # noqa: F811
    threads = [chatdb.create_thread(USER, f"t{n}", vlab_id=USER) for n in range(5)]
    thread = threads[0].thread_id
    contents = [{"role": "user", "content": f"m{n}", "n": [n, None]} for n in range(4)]
    ids = chatdb.add_messages(
        [{"thread_id": thread, "entity": "USER", "content": c} for c in contents]
        + [{"thread_id": thread, "entity": "TOOL", "content": "plain output"}]
    )
    models = chatdb.list_threads(USER, limit=3)
    rows = chatdb.list_threads(USER, limit=3, rows=True)
    assert all(isinstance(row, ThreadRow) for row in rows)
    assert [dataclasses.astuple(row) for row in rows] == [
        tuple(getattr(t, f.name) for f in chatdb.Thread._meta.sorted_fields) for t in models
    ]
    for after in (rows[-1], rows[-1].thread_id, models[-1]):
        assert chatdb.list_threads(USER, after=after, rows=True) == chatdb.list_threads(
            USER, after=models[-1].thread_id, rows=True
        )
    messages = chatdb.list_messages(thread, rows=True)
    assert [m.message_id for m in messages] == ids
    assert [m.content for m in messages] == [*contents, "plain output"]
    assert [m.raw_content for m in messages] == [
        row[0]
        for row in chat.execute_sql(
            "SELECT content FROM messages WHERE thread_id = %s ORDER BY creation_date",
            (str(thread),),
        )
    ]
    model_page = chatdb.list_messages(thread)
    assert [
        (m.message_id, m.creation_date, m.content, m.thread_id, m.entity) for m in messages
    ] == [(m.message_id, m.creation_date, m.content, m.thread_id, m.entity) for m in model_page]
    assert not any(m.is_dirty() for m in model_page)  # as read, nothing to save
    after_row = chatdb.list_messages(thread, after=messages[1], rows=True)
    assert [m.message_id for m in after_row] == ids[2:]
    with pytest.raises(chatdb.NotFound, match=f"no message {MISSING}"):
        chatdb.list_messages(thread, after=MISSING, rows=True)
    with pytest.raises(chatdb.NotFound, match=f"no thread {MISSING}"):
        chatdb.list_threads(USER, after=MISSING, rows=True)
    with pytest.raises(chatdb.NotFound, match=f"no thread {MISSING}"):
        chatdb.list_messages(MISSING, rows=True)


@pytest.mark.parametrize("bad_at", [0, 4, 7])
def test_an_append_streamed_in_chunks_writes_all_or_nothing(chat, monkeypatch, bad_at):  # noqa: F811
    monkeypatch.setattr(batch, "CHUNK_ROWS", 3)  # 8 messages: three chunks
    thread = chatdb.create_thread(USER).thread_id
    new = [
        {"thread_id": thread, "entity": "USER", "content": {"content": f"m{n}"}}
        | {"selected_tools": [f"tool{n}"]}
        for n in range(8)
    ]
    ids = chatdb.add_messages(iter(new))  # any iterable
    assert [m.message_id for m in chatdb.list_messages(thread)] == ids
    assert [m.content["content"] for m in chatdb.list_messages(thread)] == [
        f"m{n}" for n in range(8)
    ]
    assert count(chat, "tool_selection") == 8
    assert chatdb.get_thread(thread).update_date == chatdb.list_messages(thread)[-1].creation_date
    bad = [dict(message) for message in new]
    bad[bad_at]["entity"] = "NOPE"
    with pytest.raises(chatdb.InvalidInput, match=f"^message #{bad_at}: "):
        chatdb.add_messages(bad)
    assert (count(chat, "messages"), count(chat, "tool_selection")) == (8, 8)
    chosen = [{**message, "message_id": uuid.uuid4()} for message in new]
    chatdb.add_messages(chosen[:4])  # a retry of all eight, across chunks, adds the rest once
    assert chatdb.add_messages(chosen) == [message["message_id"] for message in chosen]
    assert (count(chat, "messages"), count(chat, "tool_selection")) == (16, 16)


def test_content_and_arguments_round_trip_unchanged(chat):  # noqa: F811
    thread = chatdb.create_thread(USER)
    content = {"role": "user", "content": "héllo", "n": [1, 2.5, None, True], "nested": {"a": {}}}
    arguments = {"query": "neurons", "limit": 3}
    added = chatdb.add_message(
        thread.thread_id,
        chatdb.Entity("USER"),
        content,
        tool_calls=[{"id": "c1", "name": "search", "arguments": arguments}],
    )
    assert added.content == content
    stored = chatdb.get_message(added.message_id)
    assert stored.content == content and stored.tool_calls[0].arguments == arguments
    assert chatdb.list_messages(thread.thread_id)[0].content == content
    (hit,) = chatdb.search_messages("héllo", thread_id=thread.thread_id)
    assert hit.message.content == content
    tool = chatdb.add_message(thread.thread_id, "TOOL", "plain output, not JSON")
    assert chatdb.get_message(tool.message_id).content == "plain output, not JSON"


def test_enum_members_are_found_by_label_or_value():
    for enum_class in (chatdb.Entity, chatdb.Task, chatdb.TokenType, chatdb.ReasoningLevels):
        for member in enum_class:
            assert enum_class(member.name) is enum_class(member.value) is member
            assert enum_class[member.name] is member
    with pytest.raises(ValueError):
        chatdb.Entity("robot")


def test_details_of_a_stored_message_are_recorded_and_read(chat):  # noqa: F811
    thread = chatdb.create_thread(USER)
    message = chatdb.add_message(thread.thread_id, "AI_MESSAGE", {"content": "answer"})
    assert chatdb.get_message(message.message_id).token_consumptions == []
    usage = {"model": "gpt", "task": "CHAT_COMPLETION", "type": "COMPLETION", "count": 42}
    full = chatdb.add_message_details(
        message.message_id,
        tool_calls=[{"id": "call-9", "name": "plot", "arguments": {"x": 1}, "validated": False}],
        selected_tools=["search", "plot"],
        complexity={"model": "estimator", "complexity": 3, "reasoning": "LOW"},
        token_usage=[usage],
    )
    for read in (full, chatdb.get_message(message.message_id)):
        assert [(c.tool_call_id, c.name, c.arguments, c.validated) for c in read.tool_calls] == [
            ("call-9", "plot", {"x": 1}, False)
        ]
        assert [s.tool_name for s in read.tool_selections] == ["plot", "search"]
        (estimate,) = read.complexity_estimations
        assert (estimate.model, estimate.complexity, estimate.reasoning) == (
            "estimator",
            3,
            chatdb.ReasoningLevels.LOW,
        )
        (tokens,) = read.token_consumptions
        assert (tokens.model, tokens.task, tokens.type, tokens.count) == (
            "gpt",
            chatdb.Task.CHAT_COMPLETION,
            chatdb.TokenType.COMPLETION,
            42,
        )
    assert chatdb.token_usage(thread_id=thread.thread_id)[0].count == 42


def test_delete_message_takes_its_details_and_nothing_else(chat):  # noqa: F811
    thread = chatdb.create_thread(USER)
    details = {
        "tool_calls": [{"id": "x", "name": "t"}],
        "selected_tools": ["t"],
        "complexity": {"model": "m"},
        "token_usage": [
            {"model": "m", "task": "CHAT_COMPLETION", "type": "COMPLETION", "count": 1}
        ],
    }
    gone = chatdb.add_message(thread.thread_id, "AI_TOOL", "{}", **details)
    details["tool_calls"] = [{"id": "y", "name": "t"}]
    kept = chatdb.add_message(thread.thread_id, "AI_TOOL", "{}", **details)
    chatdb.delete_message(gone.message_id)
    assert [m.message_id for m in chatdb.list_messages(thread.thread_id)] == [kept.message_id]
    for table in TABLES:
        assert count(chat, table) == 1, table


# -- safe retries: caller-chosen ids ---------------------------------------------------------


def test_appends_with_chosen_ids_are_idempotent(chat):  # noqa: F811
    thread = chatdb.create_thread(USER, thread_id=USER)
    assert chatdb.create_thread(USER, "retried", thread_id=USER).title == "New chat"
    batch = [
        {
            "message_id": uuid.UUID(int=n + 1),
            "thread_id": thread.thread_id,
            "entity": "USER",
            "content": {"content": f"m{n}"},
            "token_usage": [
                {"model": "m", "task": "CHAT_COMPLETION", "type": "COMPLETION", "count": n}
            ],
        }
        for n in range(50)
    ]
    first = chatdb.add_messages(batch[:30])
    again = chatdb.add_messages(batch)  # a retry of the first, plus more
    assert again[:30] == first and again == [uuid.UUID(int=n + 1) for n in range(50)]
    assert count(chat, "messages") == count(chat, "token_consumption") == 50
    one = chatdb.add_message(thread.thread_id, "USER", {"content": "m0"}, message_id=first[0])
    assert one.creation_date == chatdb.get_message(first[0]).creation_date
    assert count(chat, "messages") == 50


@pytest.mark.parametrize(
    "change",
    [
        {"content": {"content": "other"}},
        {"entity": "AI_MESSAGE"},
        {"thread_id": "other"},
        {"is_complete": False},
    ],
)
def test_a_chosen_id_with_other_data_is_a_conflict(chat, change):  # noqa: F811
    thread, other = chatdb.create_thread(USER), chatdb.create_thread(USER)
    if change.get("thread_id") == "other":
        change = {"thread_id": other.thread_id}
    message = {"message_id": MISSING, "thread_id": thread.thread_id, "entity": "USER"}
    chatdb.add_messages([{**message, "content": {"content": "first"}}])
    with pytest.raises(chatdb.Conflict, match="already exists"):
        chatdb.add_messages([{**message, "content": {"content": "first"}, **change}])
    with pytest.raises(chatdb.InvalidInput, match="given twice"):
        chatdb.add_messages([{**message, "content": "{}"}, {**message, "content": "{}"}])
    with pytest.raises(chatdb.Conflict, match="another user"):
        chatdb.create_thread(MISSING, thread_id=thread.thread_id)
    assert count(chat, "messages") == 1
