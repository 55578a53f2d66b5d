"""A user's script touching every public name of chatdb; tests type-check it with mypy --strict."""

from __future__ import annotations

import datetime as dt
import uuid

import chatdb
import chatdb.aio
from chatdb import (
    AlembicVersion,
    ChatdbError,
    ComplexityEstimation,
    ComplexityIn,
    Conflict,
    ConnectionFailed,
    ConnectionLost,
    Database,
    DataLossRefused,
    DriftDetected,
    Entity,
    HistoryBroken,
    InvalidInput,
    LockNotObtained,
    Message,
    MessageRow,
    NewMessage,
    NoDatabase,
    NotFound,
    PrivilegeMissing,
    Progress,
    ReasoningLevels,
    SearchHit,
    SearchResults,
    SearchTimeout,
    SnapshotUnreadable,
    TamperDetected,
    TargetReadOnly,
    Task,
    Thread,
    ThreadRow,
    TokenConsumption,
    TokenTotal,
    TokenType,
    TokenUsageIn,
    ToolCall,
    ToolCallIn,
    ToolSelection,
)

REFUSALS: tuple[type[ChatdbError], ...] = (
    ConnectionFailed,
    TargetReadOnly,
    LockNotObtained,
    DriftDetected,
    TamperDetected,
    DataLossRefused,
    NoDatabase,
    HistoryBroken,
    PrivilegeMissing,
    SnapshotUnreadable,
)


def describe(message: Message) -> str:
    content = message.content
    text = content.get("content", "") if isinstance(content, dict) else content
    entity: Entity = message.entity
    when: dt.datetime = message.creation_date
    return f"{entity.name} {when:%Y-%m-%d} {text}"


def tally(db: Database, user: uuid.UUID) -> int:
    totals: list[TokenTotal] = db.token_usage(user_id=user)
    return sum(total.count for total in totals if total.type is TokenType.COMPLETION)


def chat(db: Database, user: uuid.UUID) -> None:
    thread: Thread = db.create_thread(user, "typed", thread_id=uuid.uuid4())
    thread_id: uuid.UUID = thread.thread_id
    thread = db.update_thread(thread_id, title="renamed")
    assert db.get_thread(thread_id).title == thread.title
    call: ToolCallIn = {"id": "call-1", "name": "search", "arguments": {"q": "neurons"}}
    complexity: ComplexityIn = {"model": "m", "complexity": 2, "reasoning": ReasoningLevels.LOW}
    usage: TokenUsageIn = {
        "model": "m",
        "task": Task.CHAT_COMPLETION,
        "type": TokenType.INPUT_CACHED,
        "count": 3,
    }
    message = db.add_message(thread_id, Entity("USER"), {"content": "neurons"}, tool_calls=[call])
    new: NewMessage = {"thread_id": thread_id, "entity": "AI_MESSAGE", "content": {"content": "x"}}
    ids: list[uuid.UUID] = db.add_messages([new])
    full = db.add_message_details(ids[0], complexity=complexity, token_usage=[usage])
    calls: list[ToolCall] = list(db.get_message(message.message_id).tool_calls)
    selections: list[ToolSelection] = list(full.tool_selections)
    estimates: list[ComplexityEstimation] = list(full.complexity_estimations)
    tokens: list[TokenConsumption] = list(full.token_consumptions)
    print(len(calls), len(selections), len(estimates), len(tokens))
    page: list[Message] = db.list_messages(thread_id, limit=10, after=ids[0])
    print([describe(m) for m in page], db.list_threads(user, after=thread))
    light: list[MessageRow] = db.list_messages(thread_id, after=page[0], rows=True)
    threads: list[ThreadRow] = db.list_threads(user, rows=True)
    print([(m.raw_content, m.content) for m in light], [t.title for t in threads])
    results: SearchResults = db.search_messages("neurons", user_id=user, timeout=2.0)
    hits: list[SearchHit] = list(results)
    print([(hit.rank, hit.snippet) for hit in hits], results.dropped, tally(db, user))
    db.delete_message(message.message_id)
    db.delete_thread(thread_id)


def main() -> None:
    user = uuid.uuid4()
    try:
        db = chatdb.connect(max_connections=4, wait=5.0)
    except ConnectionFailed as exc:
        raise SystemExit(str(exc)) from None
    try:
        chat(db, user)
        progress: Progress = db.reindex_search(batch_size=500)
        print(progress.done, progress.rate)
    except (NotFound, InvalidInput, Conflict, SearchTimeout) as exc:
        print("refused:", exc)
    except ConnectionLost as exc:
        print("retry" if not exc.outcome_known else "safe to retry", exc)
    finally:
        db.close_all()
    with chatdb.connect() as one:  # the one-database convenience, inside a transaction
        thread = chatdb.create_thread(user)
        chatdb.add_message(thread.thread_id, Entity.TOOL, "tool output")
        print(chatdb.get_thread(thread.thread_id), chatdb.list_threads(user))
        print(chatdb.get_message(chatdb.list_messages(thread.thread_id)[0].message_id))
        print(chatdb.search_messages("x"), chatdb.token_usage(), chatdb.reindex_search())
        chatdb.add_messages([])
        chatdb.add_message_details(uuid.uuid4())
        chatdb.update_thread(thread.thread_id, title="t")
        chatdb.delete_message(uuid.uuid4())
        chatdb.delete_thread(thread.thread_id)
        print(one.is_closed(), AlembicVersion.select().count(), REFUSALS)


async def serve(user: uuid.UUID) -> None:
    """The async API: the same names, awaited."""
    db: chatdb.aio.Database = await chatdb.aio.connect(max_connections=8)
    try:
        thread = await db.create_thread(user, "async")
        await db.update_thread(thread.thread_id, title="renamed")
        message = await db.add_message(thread.thread_id, Entity.USER, {"content": "hi"})
        ids = await db.add_messages(
            [{"thread_id": thread.thread_id, "entity": "TOOL", "content": "x"}]
        )
        await db.add_message_details(ids[0], selected_tools=["search"])
        got: Message = await db.get_message(message.message_id)
        page: list[Message] = await db.list_messages(thread.thread_id, after=got)
        rows: list[MessageRow] = await db.list_messages(thread.thread_id, rows=True)
        mine: list[ThreadRow] = await db.list_threads(user, after=thread, rows=True)
        print(rows, mine)
        hits: SearchResults = await db.search_messages("hi", thread_id=thread.thread_id)
        totals: list[TokenTotal] = await db.token_usage(user_id=user)
        progress: Progress = await db.reindex_search()
        print(await db.get_thread(thread.thread_id), await db.list_threads(user), page, hits)
        print(totals, progress)
        await db.delete_message(message.message_id)
        await db.delete_thread(thread.thread_id)
        async with db.transaction():  # one transaction, db current for the module-level calls
            other = await chatdb.aio.create_thread(user)
            await chatdb.aio.update_thread(other.thread_id, title="t")
            await chatdb.aio.add_message(other.thread_id, "USER", {"content": "x"})
            await chatdb.aio.add_messages([])
            await chatdb.aio.add_message_details(uuid.uuid4())
            await chatdb.aio.get_message(uuid.uuid4())
            await chatdb.aio.list_messages(other.thread_id)
            await chatdb.aio.get_thread(other.thread_id)
            await chatdb.aio.list_threads(user)
            await chatdb.aio.search_messages("x")
            await chatdb.aio.token_usage()
            await chatdb.aio.reindex_search()
            await chatdb.aio.delete_message(uuid.uuid4())
            await chatdb.aio.delete_thread(other.thread_id)
    finally:
        await db.close()


if __name__ == "__main__":
    main()
