"""Token accounting sums, by user, thread and time range."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

import chatdb
from chatdb import Task, TokenTotal, TokenType
from tests.chat_support import chat, chat_url  # noqa: F401

ALICE, BOB = uuid.uuid4(), uuid.uuid4()
DAY = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


def usage(model: str, task: str, kind: str, count: int) -> dict:
    return {"model": model, "task": task, "type": kind, "count": count}


@pytest.fixture
def threads(chat):  # noqa: F811
    alice_1, alice_2 = chatdb.create_thread(ALICE), chatdb.create_thread(ALICE)
    bob = chatdb.create_thread(BOB)
    spec = [
        (alice_1, DAY, [usage("gpt", "CHAT_COMPLETION", "COMPLETION", 10)]),
        (
            alice_1,
            DAY + dt.timedelta(days=1),
            [
                usage("gpt", "CHAT_COMPLETION", "COMPLETION", 5),
                usage("gpt", "TOOL_SELECTION", "INPUT_CACHED", 100),
            ],
        ),
        (
            alice_2,
            DAY + dt.timedelta(days=2),
            [usage("claude", "CHAT_COMPLETION", "COMPLETION", 7)],
        ),
        (bob, DAY, [usage("gpt", "CHAT_COMPLETION", "COMPLETION", 1000)]),
    ]
    chatdb.add_messages(
        [
            {
                "thread_id": thread.thread_id,
                "entity": "AI_MESSAGE",
                "content": {"content": "answer"},
                "creation_date": when,
                "token_usage": tokens,
            }
            for thread, when, tokens in spec
        ]
    )
    return alice_1, alice_2, bob


def test_totals_by_user_thread_and_time(threads):
    alice_1, _alice_2, bob = threads
    assert chatdb.token_usage(user_id=ALICE) == [
        TokenTotal("claude", Task.CHAT_COMPLETION, TokenType.COMPLETION, 7),
        TokenTotal("gpt", Task.CHAT_COMPLETION, TokenType.COMPLETION, 15),
        TokenTotal("gpt", Task.TOOL_SELECTION, TokenType.INPUT_CACHED, 100),
    ]
    assert chatdb.token_usage(thread_id=bob.thread_id) == [
        TokenTotal("gpt", Task.CHAT_COMPLETION, TokenType.COMPLETION, 1000)
    ]
    assert chatdb.token_usage(thread_id=alice_1.thread_id, since=DAY + dt.timedelta(hours=1)) == [
        TokenTotal("gpt", Task.CHAT_COMPLETION, TokenType.COMPLETION, 5),
        TokenTotal("gpt", Task.TOOL_SELECTION, TokenType.INPUT_CACHED, 100),
    ]
    assert chatdb.token_usage(until=DAY + dt.timedelta(hours=1)) == [
        TokenTotal("gpt", Task.CHAT_COMPLETION, TokenType.COMPLETION, 1010)
    ]
    everything = chatdb.token_usage()
    assert sum(total.count for total in everything) == 1122
    assert chatdb.token_usage(user_id=uuid.uuid4()) == []


def test_naive_datetimes_are_refused(chat):  # noqa: F811
    with pytest.raises(ValueError, match="timezone-aware"):
        chatdb.token_usage(since=dt.datetime(2025, 1, 1))
