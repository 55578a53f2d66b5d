"""Explicit databases: each ``chatdb.Database`` has its own pool, several work side by side,
and a lost connection says what happened to the call (``ConnectionLost``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import psycopg2
import pytest

import chatdb
from chatdb.db import pool

USER = uuid.UUID("00000000-0000-4000-8000-000000000003")


@pytest.fixture
def two(chatdb_url: str, chatdb_new_database: Callable[..., str], chatdb_template: str) -> Iterator:
    """Two databases at head, both open, neither current."""
    first = chatdb.connect(chatdb_url, max_connections=2)
    second = chatdb.connect(chatdb_new_database(template=chatdb_template), max_connections=2)
    try:
        yield first, second
    finally:
        first.close_all()
        second.close_all()


def test_two_databases_work_side_by_side(two):
    first, second = two
    assert isinstance(first, chatdb.Database)
    first.create_thread(USER, "in the first")
    second.create_thread(USER, "in the second")
    assert [t.title for t in first.list_threads(USER)] == ["in the first"]
    assert [t.title for t in second.list_threads(USER)] == ["in the second"]
    with pytest.raises(chatdb.NoDatabase, match="databases are open"):
        chatdb.list_threads(USER)  # never silently the last one connected
    with second:  # current for the block: module-level calls and the models use it
        assert [t.title for t in chatdb.list_threads(USER)] == ["in the second"]
        assert chatdb.Thread.select().count() == 1
    # The block closed the second (one transaction, then closed, as before); the first is
    # the one open database now, the convenience's.
    assert [t.title for t in chatdb.list_threads(USER)] == ["in the first"]
    first.close()
    with pytest.raises(chatdb.NoDatabase, match="no database is open"):
        chatdb.list_threads(USER)
    assert [t.title for t in second.list_threads(USER)] == ["in the second"]  # reopens


def test_threads_share_each_pool_and_give_connections_back(two):
    first, second = two
    threads = {db: db.create_thread(USER).thread_id for db in two}

    def append(n: int) -> uuid.UUID:
        db = (first, second)[n % 2]
        return db.add_message(threads[db], "USER", {"content": f"m{n}"}).message_id

    with ThreadPoolExecutor(8) as pool:  # 8 threads, pools of 2 connections: calls wait their turn
        ids = list(pool.map(append, range(64)))
    assert len(set(ids)) == 64
    for db in two:
        assert len(db.list_messages(threads[db])) == 32
        assert not db._in_use  # every borrowed connection went back


def test_a_pooled_connection_is_lent_again_without_opening_one(chatdb_url, monkeypatch):
    opened = []

    def counting(connect):
        opened.append(connect)
        return connect()

    monkeypatch.setattr(pool, "interruptible", counting)  # the helper-thread opener
    db = chatdb.connect(chatdb_url)
    try:
        for _ in range(5):
            db.list_threads(USER)
        assert len(opened) == 1 and not db._in_use
    finally:
        db.close_all()


def test_a_connection_given_back_just_now_is_lent_without_a_round_trip(
    chatdb_url, chatdb_server_url, monkeypatch
):
    db = chatdb.connect(chatdb_url, max_connections=1)
    pings = []
    ping = db._adapter.is_connection_closed
    monkeypatch.setattr(db._adapter, "is_connection_closed", lambda c: pings.append(c) or ping(c))
    try:
        for _ in range(5):
            db.list_threads(USER)
        assert pings == []  # each call got back the connection the one before gave back
        monkeypatch.setattr(pool, "TRUSTED_FOR", 0.0)  # as if it had idled in the pool
        with db.connection_context():
            pid = db.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
        _terminate(chatdb_server_url, pid)  # the server drops it while it idles
        assert db.list_threads(USER) == []  # checked, found dead, replaced: no error
        assert len(pings) == 2 and pings[-1].closed  # the second found the dropped one
    finally:
        db.close_all()


def test_connect_failure_names_the_target_without_its_password(chatdb_url):
    bad = chatdb_url.replace("/chatdb_test_", "/missing_chatdb_test_")
    with pytest.raises(chatdb.ConnectionFailed, match="cannot connect") as caught:
        chatdb.connect(bad)
    assert password_of(chatdb_url) not in str(caught.value)


# -- lost connections ------------------------------------------------------------------------


def password_of(url: str) -> str:
    """The URL's password, to look for in messages (a server without one has none to leak)."""
    return urlsplit(str(url)).password or "\x00(no password)"


def _terminate(server_url: str, pid: int) -> None:
    admin = psycopg2.connect(server_url)
    try:
        admin.autocommit = True
        admin.cursor().execute("SELECT pg_terminate_backend(%s)", (pid,))
    finally:
        admin.close()


def _messages(db: chatdb.Database, thread_id: uuid.UUID) -> int:
    return len(db.list_messages(thread_id, limit=1000))


def test_a_connection_lost_before_the_commit_wrote_nothing(chatdb_url, chatdb_server_url):
    db = chatdb.connect(chatdb_url, max_connections=1)
    try:
        thread = db.create_thread(USER)
        with db.connection_context():  # hold the pool's one connection, then cut it
            _terminate(chatdb_server_url, db.execute_sql("SELECT pg_backend_pid()").fetchone()[0])
            with pytest.raises(chatdb.ConnectionLost, match="nothing was written") as caught:
                db.add_message(thread.thread_id, "USER", {"content": "lost"})
        assert caught.value.outcome_known is True
        assert password_of(chatdb_url) not in str(caught.value)
        assert _messages(db, thread.thread_id) == 0  # and the pool has a working connection
    finally:
        db.close_all()


DIE_AT_COMMIT = """
CREATE FUNCTION die_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER die_at_commit AFTER INSERT ON messages
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION die_at_commit();
"""


def test_a_connection_lost_while_committing_is_unknown_and_a_retry_is_safe(chatdb_url):
    db = chatdb.connect(chatdb_url)
    try:
        thread = db.create_thread(USER)
        batch = [
            {
                "message_id": uuid.uuid4(),
                "thread_id": thread.thread_id,
                "entity": "USER",
                "content": {"content": f"m{n}"},
            }
            for n in range(5)
        ]
        db.execute_sql(DIE_AT_COMMIT)  # the server goes away at COMMIT of an append
        db.release()
        with pytest.raises(chatdb.ConnectionLost, match=r"while committing.*unknown") as caught:
            db.add_messages(batch)
        assert caught.value.outcome_known is False
        db.execute_sql("DROP TRIGGER die_at_commit ON messages")
        db.release()
        assert db.add_messages(batch) == db.add_messages(batch) == [m["message_id"] for m in batch]
        assert _messages(db, thread.thread_id) == 5
    finally:
        db.close_all()


def test_a_database_connected_in_a_statement_stays_open_until_closed(chatdb_url):
    chatdb.connect(chatdb_url)  # as scripts write it: no name kept
    try:
        thread = chatdb.create_thread(USER, "kept")
        assert chatdb.get_thread(thread.thread_id).title == "kept"
    finally:
        chatdb.Thread._meta.database.obj.close_all()
    with pytest.raises(chatdb.NoDatabase, match="no database is open"):
        chatdb.list_threads(USER)


REFUSE_AT_COMMIT = """
CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'refused at commit'; END $$;
CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON messages
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_at_commit();
"""


def test_an_earlier_failed_commit_does_not_make_a_later_outcome_unknown(
    chatdb_url, chatdb_server_url
):
    db = chatdb.connect(chatdb_url, max_connections=1)
    try:
        thread = db.create_thread(USER)
        db.execute_sql(REFUSE_AT_COMMIT)
        db.release()
        with pytest.raises(Exception, match="refused at commit"):
            db.add_message(thread.thread_id, "USER", {"content": "refused"})
        db.execute_sql("DROP TRIGGER refuse_at_commit ON messages")
        with db.connection_context():
            _terminate(chatdb_server_url, db.execute_sql("SELECT pg_backend_pid()").fetchone()[0])
            with pytest.raises(chatdb.ConnectionLost, match="nothing was written") as caught:
                db.add_message(thread.thread_id, "USER", {"content": "lost"})
        assert caught.value.outcome_known is True
    finally:
        db.close_all()
