"""The async data API (chatdb.aio): the sync API's names and semantics, awaited, on asyncpg.

Each behaviour pinned for the sync API has its twin here, and the table of
calls below runs through both APIs to show they answer alike.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Callable
from types import SimpleNamespace

import psycopg2
import pytest

import chatdb
import chatdb.aio
from chatdb.api import batch
from tests.conftest import REPO
from tests.test_databases import DIE_AT_COMMIT, password_of

USER = uuid.UUID("00000000-0000-4000-8000-000000000004")
MISSING = uuid.UUID("00000000-0000-4000-8000-00000000dead")


def run(coroutine):
    return asyncio.run(coroutine)


def test_an_async_append_streamed_in_chunks_writes_all_or_nothing(chatdb_url, monkeypatch):
    monkeypatch.setattr(batch, "CHUNK_ROWS", 3)  # 8 messages: three chunks

    async def append() -> None:
        db = await chatdb.aio.connect(chatdb_url, max_connections=1)
        try:
            thread = (await db.create_thread(uuid.uuid4())).thread_id
            new = [
                {"thread_id": thread, "entity": "USER", "content": {"content": f"m{n}"}}
                | {"selected_tools": [f"tool{n}"]}
                for n in range(8)
            ]
            ids = await db.add_messages(new)
            assert [m.message_id for m in await db.list_messages(thread)] == ids
            new[6]["entity"] = "NOPE"
            with pytest.raises(chatdb.InvalidInput, match=r"^message #6: "):
                await db.add_messages(new)
            assert len(await db.list_messages(thread)) == 8
            (details,) = (await db.get_message(ids[7])).tool_selections
            assert details.tool_name == "tool7"
        finally:
            await db.close()

    run(append())


def test_the_async_api_has_the_sync_api_s_names():
    sync_calls = {name for name in dir(chatdb.Database) if not name.startswith("_")}
    for name in chatdb.aio.__all__:
        assert name in chatdb.__all__, name
    assert {n for n in chatdb.aio.__all__ if n[0].islower()} - {"connect"} <= sync_calls


async def _crud(url: str) -> None:
    db = await chatdb.aio.connect(url, max_connections=3)
    try:
        thread = await db.create_thread(USER, "async", vlab_id=USER)
        assert (await db.get_thread(thread.thread_id)).title == "async"
        assert (await db.update_thread(thread.thread_id, title="renamed")).title == "renamed"
        content = {"role": "user", "content": "Cortical neurons fire", "n": [1, 2.5, None]}
        usage = {"model": "m", "task": "CHAT_COMPLETION", "type": "COMPLETION", "count": 9}
        added = await db.add_message(
            thread.thread_id,
            chatdb.Entity("USER"),
            content,
            tool_calls=[{"id": "a1", "name": "search", "arguments": {"q": "x"}}],
            selected_tools=["search"],
            complexity={"model": "e", "complexity": 1, "reasoning": "HIGH"},
            token_usage=[usage],
        )
        assert added.content == content
        ids = await db.add_messages(
            [
                {"thread_id": thread.thread_id, "entity": "TOOL", "content": f"out {n}"}
                for n in range(5)
            ]
        )
        stored = await db.get_message(added.message_id)
        assert stored.content == content and stored.entity is chatdb.Entity.USER
        assert [(c.tool_call_id, c.arguments) for c in stored.tool_calls] == [("a1", {"q": "x"})]
        assert [s.tool_name for s in stored.tool_selections] == ["search"]
        assert stored.complexity_estimations[0].reasoning is chatdb.ReasoningLevels.HIGH
        assert stored.token_consumptions[0].count == 9
        more = await db.add_message_details(ids[0], token_usage=[{**usage, "count": 1}])
        assert [t.count for t in more.token_consumptions] == [1]
        page = await db.list_messages(thread.thread_id, limit=3)
        assert [m.message_id for m in page] == [added.message_id, *ids[:2]]
        rest = await db.list_messages(thread.thread_id, after=page[-1].message_id)
        assert [m.message_id for m in rest] == ids[2:]
        light = await db.list_messages(thread.thread_id, limit=3, rows=True)
        assert [(m.message_id, m.content) for m in light] == [
            (m.message_id, m.content) for m in page
        ]
        after_row = await db.list_messages(thread.thread_id, after=light[-1], rows=True)
        assert [m.message_id for m in after_row] == ids[2:]
        (light_thread,) = await db.list_threads(USER, rows=True)
        assert (light_thread.thread_id, light_thread.title) == (thread.thread_id, "renamed")
        assert [t.thread_id for t in await db.list_threads(USER)] == [thread.thread_id]
        (hit,) = await db.search_messages("cortical neuron", user_id=USER)
        assert hit.message.message_id == added.message_id and "<b>" in hit.snippet
        assert hit.message.content == content
        (bare,) = await db.search_messages("cortical neuron", user_id=USER, snippets=False)
        assert (bare.message.message_id, bare.rank, bare.snippet) == (
            hit.message.message_id,
            hit.rank,
            "",
        )
        totals = await db.token_usage(
            thread_id=thread.thread_id, since=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
        )
        assert [(t.task, t.type, t.count) for t in totals] == [
            (chatdb.Task.CHAT_COMPLETION, chatdb.TokenType.COMPLETION, 10)
        ]
        assert (await db.reindex_search(batch_size=2)).done == 6
        await db.delete_message(ids[0])
        assert len(await db.list_messages(thread.thread_id)) == 5
        await db.delete_thread(thread.thread_id)
        assert await db.list_threads(USER) == []
    finally:
        await db.close()


def test_crud_search_accounting_and_reindex(chatdb_url):
    run(_crud(chatdb_url))


# -- the same calls answer alike in both APIs ----------------------------------------------

CALLS: list[tuple[str, tuple, dict, type[Exception], str]] = [
    ("get_thread", (MISSING,), {}, chatdb.NotFound, f"no thread {MISSING}"),
    ("update_thread", (MISSING,), {"title": "t"}, chatdb.NotFound, "no thread"),
    ("delete_thread", (MISSING,), {}, chatdb.NotFound, "no thread"),
    ("list_messages", (MISSING,), {}, chatdb.NotFound, "no thread"),
    ("list_threads", (USER,), {"after": MISSING}, chatdb.NotFound, "no thread"),
    ("add_message", (MISSING, "USER", {}), {}, chatdb.NotFound, "no thread"),
    ("get_message", (MISSING,), {}, chatdb.NotFound, f"no message {MISSING}"),
    ("delete_message", (MISSING,), {}, chatdb.NotFound, "no message"),
    ("add_message_details", (MISSING,), {"selected_tools": ["t"]}, chatdb.NotFound, "no message"),
    ("token_usage", (), {"thread_id": MISSING}, chatdb.NotFound, "no thread"),
    ("search_messages", ("x",), {"thread_id": MISSING}, chatdb.NotFound, "no thread"),
    ("token_usage", (), {"since": "2025-01-01"}, chatdb.InvalidInput, "since must be"),
    ("list_threads", (USER,), {"after": 12}, chatdb.InvalidInput, "after 12 is not a UUID"),
    ("list_threads", (USER,), {"limit": 0}, chatdb.InvalidInput, "limit"),
    ("search_messages", (b"x",), {}, chatdb.InvalidInput, "query must be a string"),
    ("search_messages", ("x",), {"timeout": 0}, chatdb.InvalidInput, "timeout"),
    ("add_message", (USER, "ROBOT", {}), {}, chatdb.InvalidInput, "Message.entity"),
    ("add_messages", ({"a": 1},), {}, chatdb.InvalidInput, "a list of message dicts"),
    ("create_thread", (USER,), {"title": None}, chatdb.InvalidInput, "title must be a string"),
    ("reindex_search", (), {"batch_size": 0}, chatdb.InvalidInput, "batch size"),
]


@pytest.mark.parametrize(("name", "args", "kwargs", "error", "said"), CALLS)
def test_both_apis_refuse_alike(chatdb_url, name, args, kwargs, error, said):
    with chatdb.connect(chatdb_url) as sync_db, pytest.raises(error, match=said) as sync_caught:
        getattr(sync_db, name)(*args, **kwargs)

    async def attempt() -> BaseException:
        db = await chatdb.aio.connect(chatdb_url)
        try:
            with pytest.raises(error, match=said) as caught:
                await getattr(db, name)(*args, **kwargs)
            return caught.value
        finally:
            await db.close()

    assert str(run(attempt())) == str(sync_caught.value)


# -- explicit databases, the convenience, transactions -------------------------------------


def test_two_databases_side_by_side_and_the_one_database_convenience(
    chatdb_url, chatdb_new_database: Callable[..., str], chatdb_template
):
    other_url = chatdb_new_database(template=chatdb_template)

    async def scenario() -> None:
        first = await chatdb.aio.connect(chatdb_url)
        second = await chatdb.aio.connect(other_url)
        try:
            await first.create_thread(USER, "first")
            await second.create_thread(USER, "second")
            with pytest.raises(chatdb.NoDatabase, match="databases are open"):
                await chatdb.aio.list_threads(USER)
            async with second.transaction():
                assert [t.title for t in await chatdb.aio.list_threads(USER)] == ["second"]
                await chatdb.aio.create_thread(USER, "in the block")
            # the two calls of separate tasks, each on its own database, at once
            titles = await asyncio.gather(first.list_threads(USER), second.list_threads(USER))
            assert [[t.title for t in page] for page in titles] == [
                ["first"],
                ["in the block", "second"],
            ]
            await second.close()
            assert [t.title for t in await chatdb.aio.list_threads(USER)] == ["first"]
        finally:
            await first.close()
            await second.close()
        with pytest.raises(chatdb.NoDatabase, match="no database is open"):
            await chatdb.aio.list_threads(USER)

    run(scenario())


def test_a_failing_transaction_block_leaves_nothing(chatdb_url):
    async def scenario() -> None:
        db = await chatdb.aio.connect(chatdb_url)
        try:
            with pytest.raises(chatdb.NotFound):
                async with db.transaction():
                    await chatdb.aio.create_thread(USER, "undone")
                    await chatdb.aio.add_message(MISSING, "USER", {"content": "x"})
            assert await db.list_threads(USER) == []
        finally:
            await db.close()

    run(scenario())


def test_appends_with_chosen_ids_are_idempotent(chatdb_url):
    async def scenario() -> None:
        db = await chatdb.aio.connect(chatdb_url)
        try:
            thread = await db.create_thread(USER)
            batch = [
                {
                    "message_id": uuid.UUID(int=n + 1),
                    "thread_id": thread.thread_id,
                    "entity": "USER",
                    "content": {"content": f"m{n}"},
                }
                for n in range(20)
            ]
            assert await db.add_messages(batch[:10]) == [m["message_id"] for m in batch[:10]]
            assert await db.add_messages(batch) == [m["message_id"] for m in batch]
            assert len(await db.list_messages(thread.thread_id)) == 20
            with pytest.raises(chatdb.Conflict, match="already exists"):
                await db.add_messages([{**batch[0], "content": {"content": "other"}}])
            with pytest.raises(chatdb.Conflict, match="tool call id"):
                for _ in range(2):
                    await db.add_message(
                        thread.thread_id, "AI_TOOL", "{}", tool_calls=[{"id": "c", "name": "t"}]
                    )
            assert len(await db.list_messages(thread.thread_id)) == 21
        finally:
            await db.close()

    run(scenario())


# -- cancellation and lost connections -----------------------------------------------------


def test_a_cancelled_append_writes_nothing_and_gives_its_connection_back(chatdb_url):
    """Cancelled while its write of the last table waits for a lock (the messages are in)."""
    blocker = psycopg2.connect(chatdb_url)

    async def scenario() -> None:
        db = await chatdb.aio.connect(chatdb_url, max_connections=2)
        try:
            thread = await db.create_thread(USER)
            usage = {"model": "m", "task": "CHAT_COMPLETION", "type": "COMPLETION", "count": 1}
            batch = [
                {
                    "thread_id": thread.thread_id,
                    "entity": "USER",
                    "content": {"content": f"m{n}"},
                    "token_usage": [usage],
                }
                for n in range(500)
            ]
            with blocker.cursor() as cursor:
                cursor.execute("LOCK TABLE token_consumption IN ACCESS EXCLUSIVE MODE")
            task = asyncio.create_task(db.add_messages(batch))
            for _ in range(600):  # until the append waits for the lock (at most a minute)
                if await _waiting_for_a_lock(db):
                    break
                await asyncio.sleep(0.1)
            else:
                pytest.fail("the append never waited for the lock on token_consumption")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            blocker.rollback()
            assert await db.list_messages(thread.thread_id) == []
            assert db.pool.get_idle_size() == db.pool.get_size()  # nothing held
            await db.add_messages(batch[:3])
            assert len(await db.list_messages(thread.thread_id)) == 3
        finally:
            await db.close()

    try:
        run(scenario())
    finally:
        blocker.close()


async def _waiting_for_a_lock(db: chatdb.aio.Database) -> bool:
    async with db.connection() as connection:
        return bool(
            await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                " AND query LIKE '%token_consumption%'"
            )
        )


def test_a_connection_lost_before_the_commit_wrote_nothing(chatdb_url, chatdb_server_url):
    async def scenario() -> None:
        db = await chatdb.aio.connect(chatdb_url, max_connections=1)
        try:
            thread = await db.create_thread(USER)
            with pytest.raises(chatdb.ConnectionLost, match="nothing was written") as caught:
                async with db.transaction():  # hold one connection, then cut it
                    async with db.connection() as held:
                        pid = await held.fetchval("SELECT pg_backend_pid()")
                    _terminate(chatdb_server_url, pid)
                    await chatdb.aio.add_message(thread.thread_id, "USER", {"content": "lost"})
            assert caught.value.outcome_known is True
            assert password_of(chatdb_url) not in str(caught.value)
            assert await db.list_messages(thread.thread_id) == []
        finally:
            await db.close()

    run(scenario())


def test_a_connection_lost_while_committing_is_unknown_and_a_retry_is_safe(chatdb_url):
    async def scenario() -> None:
        db = await chatdb.aio.connect(chatdb_url)
        try:
            thread = await db.create_thread(USER)
            batch = [
                {
                    "message_id": uuid.uuid4(),
                    "thread_id": thread.thread_id,
                    "entity": "USER",
                    "content": {"content": f"m{n}"},
                }
                for n in range(5)
            ]
            async with db.connection() as connection:
                await connection.execute(DIE_AT_COMMIT)
            with pytest.raises(chatdb.ConnectionLost, match=r"while committing.*unknown") as lost:
                await db.add_messages(batch)
            assert lost.value.outcome_known is False
            async with db.connection() as connection:
                await connection.execute("DROP TRIGGER die_at_commit ON messages")
            ids = [m["message_id"] for m in batch]
            assert await db.add_messages(batch) == await db.add_messages(batch) == ids
            assert len(await db.list_messages(thread.thread_id)) == 5
        finally:
            await db.close()

    run(scenario())


def _terminate(server_url: str, pid: int) -> None:
    admin = psycopg2.connect(server_url)
    try:
        admin.autocommit = True
        admin.cursor().execute("SELECT pg_terminate_backend(%s)", (pid,))
    finally:
        admin.close()


def test_the_documented_service_example_runs(chatdb_url, monkeypatch):
    doc = (REPO / "docs" / "DATA_API.md").read_text()
    section = doc.split("## The async API", 1)[1]
    namespace: dict = {}
    exec(section.split("```python\n", 1)[1].split("```", 1)[0], namespace)
    monkeypatch.setenv("DATABASE_URL", str(chatdb_url))
    app = SimpleNamespace(state=SimpleNamespace())

    async def scenario() -> None:
        async with namespace["lifespan"](app):
            thread = await app.state.db.create_thread(USER)
            created = await namespace["post_message"](app, thread.thread_id, "cortical neurons")
            assert created["status"] == 201
            assert created["content"] == {"role": "user", "content": "cortical neurons"}
            assert (await namespace["post_message"](app, MISSING, "x"))["status"] == 404
            refused = await namespace["post_message"](app, thread.thread_id, "a\x00b")
            assert refused["status"] == 422 and "jsonb rejects" in refused["detail"]
            (hit,) = await namespace["search"](app, USER, "neurons")
            assert hit["id"] == created["id"] and "<b>" in hit["snippet"]

    run(scenario())


def test_async_with_a_database_is_one_transaction_then_closes_it(chatdb_url):
    async def scenario() -> None:
        with pytest.raises(chatdb.InvalidInput):
            async with await chatdb.aio.connect(chatdb_url) as db:
                await chatdb.aio.create_thread(USER, "undone")
                await chatdb.aio.create_thread(USER, title=None)
        async with await chatdb.aio.connect(chatdb_url) as db:
            await chatdb.aio.create_thread(USER, "kept")
        with pytest.raises(chatdb.NoDatabase, match="no database is open"):
            await chatdb.aio.list_threads(USER)
        assert db.pool.is_closing()
        async with await chatdb.aio.connect(chatdb_url) as db:
            assert [t.title for t in await db.list_threads(USER)] == ["kept"]

    run(scenario())
