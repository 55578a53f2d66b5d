"""The catalog comparison names every kind of difference in words a DBA reads."""

from __future__ import annotations

import pytest

from chatdb import catalog
from chatdb.catalog import bodies
from chatdb.migrate.executor import Runner
from tests.conftest import MIGRATIONS, load_legacy

NULL_BODY = " BEGIN NEW.search_vector := NULL; RETURN NEW; END "
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
        "CREATE OR REPLACE FUNCTION update_messages_search_vector() RETURNS trigger "
        "LANGUAGE plpgsql AS $f$ BEGIN NEW.search_vector := NULL; RETURN NEW; END $f$",
        "function update_messages_search_vector(): its body is not one chatdb knows "
        f"(fingerprint {catalog.fingerprint(NULL_BODY)}); nearest is ",
    ),
    (
        "ALTER TABLE messages DISABLE TRIGGER messages_search_vector_trigger",
        "messages: trigger messages_search_vector_trigger is disabled; expected enabled",
    ),
    (
        "ALTER TABLE messages ENABLE REPLICA TRIGGER messages_search_vector_trigger",
        "messages: trigger messages_search_vector_trigger is enabled on replicas only; "
        "expected enabled",
    ),
    (
        "ALTER FUNCTION update_messages_search_vector() SECURITY DEFINER",
        "function update_messages_search_vector(): returns trigger language plpgsql "
        "security definer; expected returns trigger language plpgsql",
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
    assert any(str(d).startswith(message) for d in differences), differences


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
        catalog.Difference(
            "index validity",
            "ix_messages_search_vector",
            "valid",
            "INVALID",
            "messages.search_vector: index ix_messages_search_vector is INVALID "
            "(an interrupted concurrent build); drop it and build it again",
        )
    ]


@pytest.mark.parametrize(
    "change,kind,name,expected,found",
    [
        ("DROP INDEX ix_messages_search_vector", "index", "ix_messages_search_vector",
         "CREATE INDEX ix_messages_search_vector ON public.messages USING gin (search_vector)",
         None),
        ("ALTER TABLE threads ADD COLUMN archived boolean", "column", "threads.archived", None,
         "boolean"),
        ("ALTER TABLE tool_calls ALTER COLUMN arguments TYPE text", "column type",
         "tool_calls.arguments", "character varying", "text"),
        ("ALTER TYPE entity ADD VALUE 'SYSTEM'", "enum label", "entity.SYSTEM", None, "SYSTEM"),
        ("ALTER TABLE messages DISABLE TRIGGER messages_search_vector_trigger",
         "trigger state", "messages.messages_search_vector_trigger", "enabled", "disabled"),
    ],
)  # fmt: skip
def test_differences_are_data(db_url, change, kind, name, expected, found):
    """Kind, object, expected and found: what check --json, the handover and create read."""
    load_legacy(db_url)
    with Runner(db_url, MIGRATIONS) as runner:
        before = catalog.read_catalog(runner.database)
        runner.database.execute_sql(change)
        after = catalog.read_catalog(runner.database)
    (difference,) = catalog.diff(before, after)
    assert (difference.kind, difference.object) == (kind, name)
    assert (difference.expected, difference.found) == (expected, found)
    assert difference.as_dict()["message"] == str(difference)


def test_catalog_round_trips_through_json(db_url):
    load_legacy(db_url)
    with Runner(db_url, MIGRATIONS) as runner:
        snapshot = catalog.read_catalog(runner.database)
    assert catalog.Catalog.from_json(snapshot.to_json()) == snapshot
    assert catalog.diff(snapshot, catalog.Catalog()) != []


def test_both_legitimate_search_bodies_are_the_same_function(new_database):
    legacy_url, fresh_url = new_database(), new_database()
    load_legacy(legacy_url)
    with Runner(legacy_url, MIGRATIONS) as legacy, Runner(fresh_url, MIGRATIONS) as fresh:
        fresh.migrate("001_baseline")
        theirs, ours = catalog.read_catalog(legacy.database), catalog.read_catalog(fresh.database)
    name = "update_messages_search_vector()"
    assert theirs.function_bodies[name] == bodies.LEGACY_SEARCH_BODY.fingerprint
    assert ours.function_bodies[name] == bodies.CHATDB_SEARCH_BODY.fingerprint
    assert catalog.diff(ours.without("migratehistory"), theirs) == []
    assert catalog.diff(theirs, ours.without("migratehistory")) == []


def test_layout_and_comments_do_not_change_a_body(db_url):
    with Runner(db_url, MIGRATIONS) as runner:
        runner.migrate("001_baseline")
        before = catalog.read_catalog(runner.database)
        runner.database.execute_sql(
            """
            CREATE OR REPLACE FUNCTION update_messages_search_vector() RETURNS trigger
            LANGUAGE plpgsql AS $fn$
            BEGIN  -- reformatted, same code
              IF NEW.entity IN ('USER', 'AI_MESSAGE') THEN NEW.search_vector :=
                to_tsvector('english', coalesce(NEW.content::jsonb ->> 'content', ''));
              ELSE /* nothing to search */ NEW.search_vector := to_tsvector('english', '');
              END IF; RETURN NEW;
            END
            $fn$
            """
        )
        after = catalog.read_catalog(runner.database)
        runner.database.execute_sql(
            "CREATE OR REPLACE FUNCTION update_messages_search_vector() RETURNS trigger "
            "LANGUAGE plpgsql AS $fn$ BEGIN IF NEW.entity IN ('USER', 'AI_MESSAGE') THEN "
            "NEW.search_vector := to_tsvector('english', coalesce(NEW.content::jsonb ->> "
            "'content', 'x')); ELSE NEW.search_vector := to_tsvector('english', ''); "
            "END IF; RETURN NEW; END $fn$"
        )
        literal = catalog.read_catalog(runner.database)
    assert catalog.diff(before, after) == []
    assert len(catalog.diff(before, literal)) == 1, "a changed literal is a changed body"
