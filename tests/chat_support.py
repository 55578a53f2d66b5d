"""Fixtures and helpers shared by the tests of the chat API, search and commands."""

from __future__ import annotations

import hashlib
import random
import uuid

import peewee as pw
import pytest

import chatdb

# A small vocabulary with a few frequent and many rare words, so that
# searches have both large and small result sets.
WORDS = [
    "neuron",
    "cortex",
    "synapse",
    "dendrite",
    "axon",
    "spike",
    "channel",
    "potassium",
    "sodium",
    "calcium",
    "hippocampus",
    "thalamus",
    "interneuron",
    "pyramidal",
    "morphology",
    "simulation",
    "circuit",
    "oscillation",
    "theta",
    "gamma",
    "plasticity",
    "receptor",
    "glutamate",
    "dopamine",
    "layer",
    "barrel",
    "whisker",
    "rat",
    "mouse",
    "model",
    "data",
    "analysis",
    "firing",
    "rate",
    "membrane",
    "voltage",
    "current",
]
TABLES = (
    "threads",
    "messages",
    "tool_calls",
    "tool_selection",
    "token_consumption",
    "complexity_estimation",
)


@pytest.fixture
def chat_url(chatdb_url: str) -> str:
    """An empty database at head (the plugin's copy of a template migrated once)."""
    return chatdb_url


@pytest.fixture
def chat(chatdb_database: pw.PostgresqlDatabase) -> pw.PostgresqlDatabase:
    """The models bound to a migrated database of this test's own."""
    return chatdb_database


def sentence(rng: random.Random, words: int) -> str:
    """Words drawn with Zipf-like weights (the first words are the most common)."""
    weights = [1 / (rank + 1) for rank in range(len(WORDS))]
    return " ".join(rng.choices(WORDS, weights=weights, k=words))


def seed(users: int = 3, threads_per_user: int = 4, messages_per_thread: int = 12) -> list:
    """Deterministic chats for several users; returns the users' ids."""
    rng = random.Random(6)
    user_ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(users)]
    batch = []
    for user in user_ids:
        for number in range(threads_per_user):
            thread = chatdb.create_thread(user, f"thread {number}", vlab_id=user)
            for turn in range(messages_per_thread):
                entity = (chatdb.Entity.USER, chatdb.Entity.AI_MESSAGE, chatdb.Entity.TOOL)[
                    turn % 3
                ]
                role = {"USER": "user", "AI_MESSAGE": "assistant", "TOOL": "tool"}[entity.name]
                batch.append(
                    {
                        "thread_id": thread.thread_id,
                        "entity": entity,
                        "content": {"role": role, "content": sentence(rng, rng.randint(3, 25))},
                    }
                )
    chatdb.add_messages(batch)
    return user_ids


def fingerprint(database: pw.Database) -> str:
    """A digest of every row of every chat table, to show nothing changed."""
    digest = hashlib.sha256()
    for table in TABLES:
        rows = database.execute_sql(
            f"SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM {table} t"
        ).fetchone()[0]
        digest.update(f"{table}:{rows};".encode())
    return digest.hexdigest()
