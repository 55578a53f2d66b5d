"""The baseline migration builds a database indistinguishable from the legacy one."""

from __future__ import annotations

import psycopg2
import pytest

from chatdb import catalog
from chatdb.migrate import history
from chatdb.migrate.executor import Runner
from tests.conftest import MIGRATIONS, load_legacy

BASELINE = "001_baseline"

CONTRACT_EXAMPLES = [
    (
        '{"role": "user", "content": "Running quickly through the cortical neurons"}',
        "'cortic':5 'neuron':6 'quick':2 'run':1",
    ),
    ('{"content": ""}', ""),
    ('{"content": null}', ""),
    ('{"role": "assistant"}', ""),
    ("[1, 2, 3]", ""),
    ('"just a string"', ""),
    ('{"content": 5}', "'5':1"),
]


def _baseline(url: str) -> Runner:
    runner = Runner(url, MIGRATIONS)
    runner.migrate(BASELINE)
    return runner


def _search_vector(url: str, entity: str, content: str) -> str:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO threads VALUES (gen_random_uuid(), NULL, NULL, 't', now(), now(), "
                "gen_random_uuid()) RETURNING thread_id"
            )
            (thread_id,) = cur.fetchone()
            cur.execute(
                "INSERT INTO messages VALUES (gen_random_uuid(), now(), %s, %s, %s, true) "
                "RETURNING search_vector::text",
                (content, thread_id, entity),
            )
            return cur.fetchone()[0]
    finally:
        conn.rollback()
        conn.close()


def test_baseline_catalog_equals_independently_built_legacy_schema(new_database):
    legacy_url, fresh_url = new_database(), new_database()
    load_legacy(legacy_url)
    with _baseline(fresh_url) as runner:
        fresh = catalog.read_catalog(runner.database).without(history.TABLE)
    legacy_db = Runner(legacy_url, MIGRATIONS).database
    legacy = catalog.read_catalog(legacy_db)
    legacy_db.close()

    assert catalog.diff(legacy, fresh) == []
    # The comparison is not vacuous: it saw every part of the contract.
    assert fresh.enums["task"] == ["CHAT_COMPLETION", "TOOL_SELECTION", "CALL_WITHIN_TOOL"]
    assert [c.name for c in fresh.tables["messages"]] == [
        "message_id",
        "creation_date",
        "content",
        "thread_id",
        "entity",
        "is_complete",
        "search_vector",
    ]
    assert all(c.default is None for cols in fresh.tables.values() for c in cols)
    assert fresh.constraints["alembic_version"] == {
        "alembic_version_pkc": "PRIMARY KEY (version_num)"
    }
    assert fresh.indexes["ix_messages_search_vector"].definition.endswith(
        "USING gin (search_vector)"
    )
    assert "messages_search_vector_trigger" in fresh.triggers["messages"]
    assert fresh.functions == {
        "update_messages_search_vector()": "returns trigger language plpgsql"
    }
    assert fresh.extensions == ["plpgsql"]


@pytest.mark.parametrize("content,expected", CONTRACT_EXAMPLES)
@pytest.mark.parametrize("entity", ["USER", "AI_MESSAGE"])
def test_trigger_matches_contract_and_legacy(new_database, entity, content, expected):
    legacy_url, fresh_url = new_database(), new_database()
    load_legacy(legacy_url)
    _baseline(fresh_url).close()
    assert _search_vector(fresh_url, entity, content) == expected
    assert _search_vector(legacy_url, entity, content) == expected


@pytest.mark.parametrize("entity", ["USER", "AI_MESSAGE"])
def test_trigger_rejects_non_json_for_searchable_entities(db_url, entity):
    _baseline(db_url).close()
    with pytest.raises(psycopg2.Error) as info:
        _search_vector(db_url, entity, "not json at all")
    assert info.value.pgcode == "22P02"


@pytest.mark.parametrize("entity", ["TOOL", "AI_TOOL"])
def test_trigger_ignores_content_of_other_entities(db_url, entity):
    _baseline(db_url).close()
    assert _search_vector(db_url, entity, "not json at all") == ""
    assert _search_vector(db_url, entity, '{"content": "words here"}') == ""


def test_alembic_version_is_legacy_head(db_url):
    with _baseline(db_url) as runner:
        rows = runner.database.execute_sql("SELECT version_num FROM alembic_version").fetchall()
    assert rows == [("6d8986f38d7b",)]


def test_migrate_rollback_all_migrate_leaves_no_residue(db_url):
    with Runner(db_url, MIGRATIONS) as runner:
        empty = catalog.read_catalog(runner.database)
        runner.migrate()
        first = catalog.read_catalog(runner.database)
        runner.rollback(len(runner.applied()), yes=True)
        after_rollback = catalog.read_catalog(runner.database)
        runner.migrate()
        second = catalog.read_catalog(runner.database)

    assert catalog.diff(empty, after_rollback.without(history.TABLE)) == []
    assert after_rollback.enums == {} and after_rollback.functions == {}
    assert catalog.diff(first, second) == []
