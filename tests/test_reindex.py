"""reindex-search recomputes vectors in batches, and an interrupted run resumes."""

from __future__ import annotations

import pytest

import chatdb
from chatdb.db.connect import open_database
from chatdb.errors import ChatdbError
from tests.chat_support import chat, chat_url, seed  # noqa: F401

EXPECTED = """
    SELECT message_id::text,
           CASE WHEN entity IN ('USER', 'AI_MESSAGE')
                THEN to_tsvector('english', coalesce(content::jsonb ->> 'content', ''))
                ELSE to_tsvector('english', '') END::text
    FROM messages ORDER BY message_id
"""
ACTUAL = "SELECT message_id::text, search_vector::text FROM messages ORDER BY message_id"


class Stop(Exception):
    pass


def wipe_vectors(database) -> None:
    """Vectors lost, as after a data fix done with the trigger disabled."""
    database.execute_sql("ALTER TABLE messages DISABLE TRIGGER messages_search_vector_trigger")
    database.execute_sql("UPDATE messages SET search_vector = NULL")
    database.execute_sql("ALTER TABLE messages ENABLE TRIGGER messages_search_vector_trigger")


def state(database, sql: str) -> list[tuple[str, str]]:
    return database.execute_sql(sql).fetchall()


def test_reindex_recomputes_every_vector(chat):  # noqa: F811
    seed(users=2, threads_per_user=2, messages_per_thread=10)
    wipe_vectors(chat)
    seen = []
    final = chatdb.reindex_search(batch_size=7, on_batch=seen.append)
    assert state(chat, ACTUAL) == state(chat, EXPECTED)
    assert final.done == final.total == 40
    assert [p.done for p in seen] == [7, 14, 21, 28, 35, 40]
    assert all(p.rate > 0 for p in seen) and seen[-1].eta == 0


def test_interrupted_reindex_resumes_to_the_same_result(chat):  # noqa: F811
    seed(users=2, threads_per_user=3, messages_per_thread=10)
    wipe_vectors(chat)
    seen = []

    def stop_after_three(progress):
        seen.append(progress)
        if len(seen) == 3:
            raise Stop

    with pytest.raises(Stop):
        chatdb.reindex_search(batch_size=5, on_batch=stop_after_three)
    done = [row for row in state(chat, ACTUAL) if row[1] is not None]
    assert len(done) == 15, "the three committed batches are kept"
    assert max(row[0] for row in done) == str(seen[-1].last_id)

    resumed = chatdb.reindex_search(batch_size=5, after=seen[-1].last_id)
    assert resumed.total == resumed.done == 45
    assert state(chat, ACTUAL) == state(chat, EXPECTED)


def test_reindex_refuses_without_the_trigger(chat):  # noqa: F811
    chat.execute_sql("ALTER TABLE messages DISABLE TRIGGER messages_search_vector_trigger")
    with pytest.raises(ChatdbError, match="search trigger"):
        chatdb.reindex_search()
    with pytest.raises(ValueError, match="batch size"):
        chatdb.reindex_search(batch_size=0)


def test_reindex_alongside_application_writes(chat, chat_url):  # noqa: F811
    seed(users=1, threads_per_user=2, messages_per_thread=15)
    wipe_vectors(chat)
    app = open_database(chat_url)  # another connection, as the application
    thread_id = chatdb.list_threads(chatdb.Thread.get().user_id)[0].thread_id

    def application_writes(progress):
        app.execute_sql(
            "INSERT INTO messages (message_id, creation_date, content, thread_id, entity,"
            " is_complete) VALUES (gen_random_uuid(), now(), %s, %s, 'USER', true)",
            ('{"content": "written meanwhile"}', thread_id),
        )
        app.execute_sql(
            "UPDATE messages SET content = %s WHERE message_id = "
            "(SELECT max(message_id::text)::uuid FROM messages WHERE entity = 'USER')",
            (f'{{"content": "edited at {progress.done}"}}',),
        )

    try:
        chatdb.reindex_search(batch_size=4, on_batch=application_writes)
    finally:
        app.close()
    assert state(chat, ACTUAL) == state(chat, EXPECTED)
