"""Content PostgreSQL would refuse only deep inside a statement is refused in Python first."""

from __future__ import annotations

import json
import random
import uuid

import peewee as pw
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chatdb
from chatdb.schema.content import prepare_content, vector_bound
from chatdb.testing.dataset import sentence_text
from tests.chat_support import chat, chat_url  # noqa: F401

# Distinct words whose search vector passes PostgreSQL's 1 MB limit (14 bytes each).
HUGE = " ".join(f"w{n:07d}x" for n in range(90_000))
# What PostgreSQL counts against the limit: each lexeme, aligned, its count and positions.
VECTOR_SIZE = """
    SELECT coalesce(sum((octet_length(lexeme) + 1) / 2 * 2 + 2
                        + 2 * coalesce(cardinality(positions), 0)), 0)
    FROM unnest(to_tsvector('english', %s))
"""


def nested(depth: int) -> dict:
    document: dict = {"content": "deep"}
    for _ in range(depth):
        document = {"content": "x", "inner": document}
    return document


def test_a_search_vector_past_the_limit_fails_in_postgresql(chat):  # noqa: F811
    with pytest.raises(pw.DatabaseError, match="too long for tsvector"):
        chat.execute_sql("SELECT to_tsvector('english', %s)", (HUGE,))


def test_content_past_the_vector_limit_is_refused_before_any_sql(chat):  # noqa: F811
    thread = chatdb.create_thread(uuid.uuid4())
    batch = [
        {"thread_id": thread.thread_id, "entity": "USER", "content": {"content": f"hello {n}"}}
        for n in range(100)
    ]
    batch.append(
        {"thread_id": thread.thread_id, "entity": "AI_MESSAGE", "content": {"content": HUGE}}
    )
    with pytest.raises(ValueError, match=r"message #100: .*1 MB tsvector limit"):
        chatdb.add_messages(batch)
    with pytest.raises(ValueError, match="1 MB tsvector limit"):
        prepare_content("USER", json.dumps({"role": "user", "content": HUGE}))
    assert chatdb.Message.select().count() == 0
    # Tool output is not indexed: any size goes.
    chatdb.add_message(thread.thread_id, "TOOL", {"role": "tool", "content": HUGE})


def test_long_prose_is_not_refused(chat):  # noqa: F811
    rng = random.Random(3)
    prose = " ".join(sentence_text(rng, 60) for _ in range(1200))
    assert len(prose.encode()) > 300_000
    thread = chatdb.create_thread(uuid.uuid4())
    chatdb.add_message(thread.thread_id, "USER", {"role": "user", "content": prose})


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.text(
        alphabet=st.sampled_from("ab1-./@:_+~ é\u0130ß\t\x85\xa0\u2003")
        | st.characters(codec="utf-8"),
        max_size=60,
    )
)
def test_the_bound_is_never_below_what_postgresql_counts(chat, text):  # noqa: F811
    text = text.replace("\x00", "")
    assert vector_bound(text) >= chat.execute_sql(VECTOR_SIZE, (text,)).fetchone()[0]


@pytest.mark.parametrize("as_text", [False, True])
def test_deep_nesting_is_a_value_error(chat, as_text):  # noqa: F811
    # json.dumps itself cannot write this one: the text is built by hand.
    text = '{"content": "x", "inner": ' * 5000 + '{"content": "deep"}' + "}" * 5000
    content = text if as_text else nested(5000)
    thread = chatdb.create_thread(uuid.uuid4())
    with pytest.raises(ValueError, match="nested too deeply"):
        chatdb.add_message(thread.thread_id, "USER", content)
    with pytest.raises(ValueError, match="nested too deeply"):
        chatdb.add_message(
            thread.thread_id,
            "AI_TOOL",
            {"role": "assistant", "content": ""},
            tool_calls=[{"id": "c1", "name": "t", "arguments": nested(5000)}],
        )
    assert chatdb.Message.select().count() == 0


@pytest.mark.parametrize("text", ["null", "[1, 2, 3]", '"just a string"', "5", "true"])
def test_searchable_content_must_be_a_json_object(text):
    """The legacy backend stored an object; anything else is a caller's mistake, said before SQL."""
    with pytest.raises(chatdb.InvalidInput, match="USER message content must be a JSON object"):
        prepare_content("USER", text)
    assert prepare_content("TOOL", text) == text, "other entities' content is stored as given"
