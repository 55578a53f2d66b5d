"""The catalog comparison names every kind of difference in words a DBA reads."""

from __future__ import annotations

import pytest

from chatdb.drift import catalog
from chatdb.migrate.executor import Runner
from tests.conftest import MIGRATIONS, load_legacy

DRIFT = [
    (
        "DROP INDEX ix_messages_search_vector",
        "messages.search_vector: index ix_messages_search_vector is missing",
    ),
    (
        "DROP TRIGGER messages_search_vector_trigger ON messages",
        "messages: trigger messages_search_vector_trigger is missing",
    ),
    (
        "ALTER TABLE tool_calls ALTER COLUMN arguments TYPE text",
        "tool_calls.arguments: type is text, expected character varying",
    ),
    (
        "ALTER TABLE threads ADD COLUMN archived boolean",
        "threads.archived: unexpected column (boolean)",
    ),
    (
        "ALTER TABLE threads ALTER COLUMN vlab_id SET NOT NULL",
        "threads.vlab_id: is NOT NULL, expected nullable",
    ),
    (
        "ALTER TABLE threads ALTER COLUMN title SET DEFAULT 'x'",
        "threads.title: default is 'x'::character varying, expected none",
    ),
    (
        "ALTER TABLE messages DROP CONSTRAINT messages_thread_id_fkey",
        "messages: constraint messages_thread_id_fkey is missing "
        "(FOREIGN KEY (thread_id) REFERENCES threads(thread_id))",
    ),
    ("ALTER TYPE entity ADD VALUE 'SYSTEM'", "enum entity: unexpected label SYSTEM"),
    (
        "DROP TABLE complexity_estimation; DROP TYPE reasoninglevels",
        "enum type reasoninglevels is missing",
    ),
    (
        "DROP FUNCTION update_messages_search_vector() CASCADE",
        "function update_messages_search_vector() is missing",
    ),
    (
        "CREATE INDEX ix_extra ON threads (user_id)",
        "threads.user_id: unexpected index ix_extra "
        "(CREATE INDEX ix_extra ON public.threads USING btree (user_id))",
    ),
]


@pytest.mark.parametrize("change,message", DRIFT)
def test_each_kind_of_drift_is_named(db_url, change, message):
    load_legacy(db_url)
    with Runner(db_url, MIGRATIONS) as runner:
        before = catalog.read_catalog(runner.database)
        runner.database.execute_sql(change)
        after = catalog.read_catalog(runner.database)
    differences = catalog.diff(before, after)
    assert any(d.startswith(message) for d in differences), differences


def test_invalid_index_counts_as_drift(db_url):
    load_legacy(db_url)
    with Runner(db_url, MIGRATIONS) as runner:
        expected = catalog.read_catalog(runner.database)
        runner.database.execute_sql(
            "UPDATE pg_index SET indisvalid = false "
            "WHERE indexrelid = 'ix_messages_search_vector'::regclass"
        )
        actual = catalog.read_catalog(runner.database)
    assert catalog.diff(expected, actual) == [
        "messages.search_vector: index ix_messages_search_vector is INVALID "
        "(an interrupted concurrent build); drop it and build it again"
    ]


def test_catalog_round_trips_through_json(db_url):
    load_legacy(db_url)
    with Runner(db_url, MIGRATIONS) as runner:
        snapshot = catalog.read_catalog(runner.database)
    assert catalog.Catalog.from_json(snapshot.to_json()) == snapshot
    assert catalog.diff(snapshot, catalog.Catalog()) != []
