"""Writing and reading chats through the Python API, on real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import peewee as pw
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chatdb
from chatdb.db.connect import make_database
from chatdb.db.copy import CHUNK as COPY_CHUNK
from chatdb.errors import ChatdbError
from chatdb.schema.content import prepare_content
from chatdb.schema.models import bind
from tests.chat_support import TABLES, chat, chat_url  # noqa: F401

USER = uuid.UUID("00000000-0000-4000-8000-000000000001")


def rows(database: pw.Database, table: str) -> int:
    return database.execute_sql(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_connect_uses_the_url_or_database_url(chat_url, monkeypatch):  # noqa: F811
    with chatdb.connect(chat_url) as database:
        assert chatdb.Thread._meta.database.obj is database
        chatdb.create_thread(USER, "inside the transaction")
    assert database.is_closed()
    monkeypatch.setenv("DATABASE_URL", chat_url)
    database = chatdb.connect()
    try:
        assert [t.title for t in chatdb.list_threads(USER)] == ["inside the transaction"]
    finally:
        database.close_all()


def test_connect_failure_is_one_clear_error(db_url):
    with pytest.raises(ChatdbError, match="cannot connect"):
        chatdb.connect(db_url.replace("/chatdb_test_", "/missing_chatdb_test_"))


def test_add_message_writes_everything_in_one_go(chat):  # noqa: F811
    thread = chatdb.create_thread(USER, "Neurons", vlab_id=USER, project_id=USER)
    before = chatdb.Thread.get_by_id(thread.thread_id).update_date
    message = chatdb.add_message(
        thread.thread_id,
        chatdb.Entity.AI_TOOL,
        {"role": "assistant", "content": "", "tool_calls": []},
        is_complete=False,
        tool_calls=[{"id": "call_1", "name": "search", "arguments": {"q": "x"}, "validated": True}],
        selected_tools=["search", "plot"],
        complexity={"model": "m", "complexity": 4, "reasoning": "HIGH"},
        token_usage=[
            {"model": "m", "task": chatdb.Task.TOOL_SELECTION, "type": "COMPLETION", "count": 7}
        ],
    )
    stored = chatdb.get_message(message.message_id)
    assert stored.entity is chatdb.Entity.AI_TOOL and stored.is_complete is False
    assert stored.content == {"role": "assistant", "content": "", "tool_calls": []}
    assert [(c.tool_call_id, c.name, c.arguments, c.validated) for c in stored.tool_calls] == [
        ("call_1", "search", {"q": "x"}, True)
    ]
    assert sorted(s.tool_name for s in stored.tool_selections) == ["plot", "search"]
    (estimate,) = stored.complexity_estimations
    assert (estimate.complexity, estimate.reasoning) == (4, chatdb.ReasoningLevels.HIGH)
    (tokens,) = stored.token_consumptions
    assert (tokens.task, tokens.type, tokens.count) == (
        chatdb.Task.TOOL_SELECTION,
        chatdb.TokenType.COMPLETION,
        7,
    )
    assert chatdb.Thread.get_by_id(thread.thread_id).update_date >= before


def test_content_may_be_a_json_string_and_is_indexed(chat):  # noqa: F811
    thread = chatdb.create_thread(USER)
    assert thread.title == "New chat"
    message = chatdb.add_message(
        thread.thread_id, "USER", '{"role": "user", "content": "Running neurons"}'
    )
    vector = chat.execute_sql(
        "SELECT search_vector::text FROM messages WHERE message_id = %s", (message.message_id,)
    ).fetchone()[0]
    assert vector == "'neuron':2 'run':1"


def test_a_failing_part_leaves_nothing_written(chat):  # noqa: F811
    thread = chatdb.create_thread(USER)
    chatdb.add_message(
        thread.thread_id, "TOOL", {"content": "x"}, tool_calls=[{"id": "dup", "name": "a"}]
    )
    with pytest.raises(chatdb.Conflict, match="tool call id"):
        chatdb.add_message(
            thread.thread_id, "USER", {"content": "y"}, tool_calls=[{"id": "dup", "name": "b"}]
        )
    assert rows(chat, "messages") == 1
    with pytest.raises(chatdb.NotFound, match="no thread"):
        chatdb.add_message(uuid.uuid4(), "USER", {"content": "orphan"})
    with pytest.raises(ValueError, match="TokenType"):
        chatdb.add_message(
            thread.thread_id,
            "USER",
            {"content": "z"},
            token_usage=[{"model": "m", "task": "CHAT_COMPLETION", "type": "OUTPUT", "count": 1}],
        )
    assert rows(chat, "messages") == 1 and rows(chat, "token_consumption") == 0


@pytest.mark.parametrize(
    ("entity", "content", "problem"),
    [
        ("USER", "not json at all", "must be JSON"),
        ("AI_MESSAGE", "{'role': 'python repr'}", "must be JSON"),
        ("USER", '{"content": NaN}', "NaN"),
        ("USER", '{"content": "a\\u0000b"}', "u0000"),
        ("USER", '{"content": "\\ud800"}', "surrogate"),
        ("TOOL", "plain text with a NUL \x00", "NUL"),
        ("USER", ["a", "list"], "dict or a JSON string"),
        ("ROBOT", "{}", "entity"),
    ],
)
def test_bad_content_is_refused_before_any_sql(entity, content, problem):
    # Bound to a server that does not exist: any SQL would fail with OperationalError.
    bind(make_database("postgresql://nobody@/nowhere?host=/nonexistent-socket-dir"))
    with pytest.raises(ValueError, match=problem):
        chatdb.add_message(uuid.uuid4(), entity, content)
    with pytest.raises(ValueError, match=problem):
        chatdb.Message(thread=uuid.uuid4(), entity=entity, content=content, is_complete=True).save()


def test_tool_messages_may_hold_any_text(chat):  # noqa: F811
    thread = chatdb.create_thread(USER)
    message = chatdb.add_message(thread.thread_id, chatdb.Entity.TOOL, "plain tool output")
    assert chatdb.get_message(message.message_id).content == "plain tool output"


def test_model_save_checks_and_serialises_content(chat):  # noqa: F811
    thread = chatdb.create_thread(USER)
    message = chatdb.Message.create(
        thread=thread,
        entity=chatdb.Entity.USER,
        content={"role": "user", "content": "hi"},
        is_complete=True,
    )
    assert chatdb.Message.get_by_id(message.message_id).content == {
        "role": "user",
        "content": "hi",
    }
    message.content = "broken {"
    with pytest.raises(ValueError, match="must be JSON"):
        message.save()


def test_add_messages_appends_in_order_across_threads(chat):  # noqa: F811
    first, second = chatdb.create_thread(USER, "a"), chatdb.create_thread(USER, "b")
    batch = [
        {
            "thread_id": (first, second)[n % 2].thread_id,
            "entity": "USER" if n % 2 else "AI_MESSAGE",
            "content": {"content": f"message {n}"},
            "token_usage": [
                {"model": "m", "task": "CHAT_COMPLETION", "type": "COMPLETION", "count": n}
            ],
        }
        for n in range(2500)
    ]
    ids = chatdb.add_messages(batch)
    assert len(ids) == len(set(ids)) == 2500
    listed = chatdb.list_messages(first.thread_id, limit=5000)
    assert [m.message_id for m in listed] == ids[0::2]
    assert rows(chat, "token_consumption") == 2500
    newest = max(m.creation_date for m in listed)
    assert chatdb.Thread.get_by_id(first.thread_id).update_date == newest
    assert chatdb.add_messages([]) == []


def test_a_bulk_of_many_copy_chunks_keeps_every_character(chat):  # noqa: F811
    thread = chatdb.create_thread(USER)
    raw = "tab\there, line\nbreak, CR\r, back\\slash, \\N, \u00e9, \U0001f600; " * 80
    batch = [
        {
            "thread_id": thread.thread_id,
            "entity": "USER",
            "content": {"content": f"{n} {raw}"},
            "tool_calls": [{"id": f"call-{n}", "name": "search", "arguments": f"{n} {raw}"}],
        }
        for n in range(150)
    ]
    assert len(raw) * 150 > 4 * COPY_CHUNK  # several reads of each COPY
    ids = chatdb.add_messages(batch)
    listed = chatdb.list_messages(thread.thread_id, limit=500)
    assert [m.message_id for m in listed] == ids
    assert [m.content["content"] for m in listed] == [f"{n} {raw}" for n in range(150)]
    arguments = chat.execute_sql("SELECT arguments FROM tool_calls ORDER BY tool_call_id")
    assert sorted(row[0] for row in arguments) == sorted(f"{n} {raw}" for n in range(150))


def test_one_bad_message_stops_the_whole_batch(chat):  # noqa: F811
    thread = chatdb.create_thread(USER)
    good = {"thread_id": thread.thread_id, "entity": "USER", "content": {"content": "ok"}}
    with pytest.raises(ValueError, match="message #2"):
        chatdb.add_messages([good, good, {**good, "content": "oops"}])
    with pytest.raises(ValueError, match="missing required key"):
        chatdb.add_messages([{"thread_id": thread.thread_id, "entity": "USER"}])
    assert rows(chat, "messages") == 0


def test_threads_page_newest_first(chat):  # noqa: F811
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    for day in range(7):
        moment = start + dt.timedelta(days=day % 4)  # ties on update_date are broken by id
        chatdb.Thread.create(
            user_id=USER, title=f"t{day}", creation_date=moment, update_date=moment
        )
    chatdb.create_thread(uuid.uuid4(), "someone else's")
    pages, after = [], None
    while page := chatdb.list_threads(USER, limit=3, after=after):
        pages.append(page)
        after = page[-1]
    flat = [t for page in pages for t in page]
    assert [len(p) for p in pages] == [3, 3, 1]
    assert len({t.thread_id for t in flat}) == 7
    keys = [(t.update_date, t.thread_id) for t in flat]
    assert keys == sorted(keys, reverse=True)


def test_messages_page_in_order_and_get_message(chat):  # noqa: F811
    thread = chatdb.create_thread(USER)
    ids = chatdb.add_messages(
        [
            {"thread_id": thread.thread_id, "entity": "USER", "content": {"content": str(n)}}
            for n in range(10)
        ]
    )
    pages, after = [], None
    while page := chatdb.list_messages(thread.thread_id, limit=4, after=after):
        pages.append([m.message_id for m in page])
        after = page[-1]
    assert pages == [ids[0:4], ids[4:8], ids[8:10]]
    with pytest.raises(chatdb.NotFound, match="no message"):
        chatdb.get_message(uuid.uuid4())
    assert chatdb.get_message(ids[3]).tool_calls == []
    with pytest.raises(ValueError, match="limit"):
        chatdb.list_messages(thread.thread_id, limit=0)
    with pytest.raises(ValueError, match="not a UUID"):
        chatdb.list_threads("not-a-uuid")


def test_delete_thread_removes_everything_under_it(chat):  # noqa: F811
    thread, kept = chatdb.create_thread(USER), chatdb.create_thread(USER)
    for target in (thread, kept):
        chatdb.add_message(
            target.thread_id,
            "AI_TOOL",
            {"content": "calling"},
            tool_calls=[{"id": f"c-{target.thread_id}", "name": "t"}],
            selected_tools=["t"],
            complexity={"model": "m"},
            token_usage=[
                {"model": "m", "task": "CHAT_COMPLETION", "type": "COMPLETION", "count": 1}
            ],
        )
    chatdb.delete_thread(thread.thread_id)
    with pytest.raises(chatdb.NotFound, match="no thread"):
        chatdb.delete_thread(thread.thread_id)
    for table in TABLES:
        assert rows(chat, table) == 1, table


# -- the content check agrees with PostgreSQL ---------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
contents = st.one_of(
    st.text(),
    json_values.map(json.dumps),
    json_values.map(lambda v: json.dumps({"role": "user", "content": v})),
    st.sampled_from(
        ['{"a": "\\u0000"}', '"\\udc00"', "1e131072", "0e-99999", "1e-16383", '{"x": 1,}']
    ),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=contents)
def test_content_check_agrees_with_the_search_trigger(chat, text):  # noqa: F811
    thread_id = uuid.UUID("00000000-0000-4000-8000-0000000000ff")
    chat.execute_sql(
        "INSERT INTO threads (thread_id, title, creation_date, update_date, user_id)"
        " VALUES (%s, 't', now(), now(), %s) ON CONFLICT DO NOTHING",
        (thread_id, USER),
    )
    try:
        prepare_content("USER", text)
        accepted = True
    except ValueError:
        accepted = False
    try:
        with chat.atomic() as transaction:
            chat.execute_sql(
                "INSERT INTO messages (message_id, creation_date, content, thread_id, entity,"
                " is_complete) VALUES (%s, now(), %s, %s, 'USER', true)",
                (uuid.uuid4(), text, thread_id),
            )
            transaction.rollback()
        stored = True
    except (pw.DataError, pw.ProgrammingError, pw.InternalError, pw.OperationalError, ValueError):
        stored = False
    try:  # the API also wants an object, as the backend stored; the trigger takes any JSON
        is_object = isinstance(json.loads(text), dict)
    except (ValueError, RecursionError):
        is_object = False
    assert accepted == (stored and is_object), text


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=st.dictionaries(st.text(max_size=8), json_values, max_size=4))
def test_dict_content_check_agrees_with_the_search_trigger(chat, document):  # noqa: F811
    thread = chatdb.Thread.get_or_none(chatdb.Thread.user_id == USER) or chatdb.create_thread(USER)
    try:
        chatdb.add_message(thread.thread_id, "AI_MESSAGE", document)
        accepted = True
    except ValueError:
        accepted = False
    try:
        with chat.atomic() as transaction:
            chat.execute_sql(
                "SELECT to_tsvector('english', %s::jsonb ->> 'content')",
                (json.dumps(document, ensure_ascii=False),),
            )
            transaction.rollback()
        storable = True
    except (pw.DataError, pw.ProgrammingError, pw.InternalError, ValueError):
        storable = False
    assert accepted == storable, document
