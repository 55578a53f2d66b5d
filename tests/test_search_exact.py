"""Every search is the exact top of its ranking over all matches, whatever the plan."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator

import peewee as pw
import pytest

import chatdb
import chatdb.aio
from chatdb.api.search import LARGE_SCOPE, RANK_OPERATOR, search_sql
from chatdb.api.search_limits import run_bounded
from chatdb.migrate.executor import Runner
from chatdb.schema import models
from chatdb.testing import dataset
from chatdb.testing.admin import create_database, drop_database
from tests.conftest import MIGRATIONS, run_cli
from tests.test_search_bounds import PLANNER_MOODS, plan_nodes

COMMON = "neuron"
# The documented ranking, over every match: rank, then newest, then message id.
EXACT = """
    SELECT m.message_id::text
    FROM messages m, websearch_to_tsquery('english', %(query)s) q
    WHERE m.search_vector @@ q {scope}
    ORDER BY ts_rank_cd(m.search_vector, q) DESC, m.creation_date DESC, m.message_id
    LIMIT %(limit)s OFFSET %(offset)s
"""
USER_SCOPE = "AND m.thread_id IN (SELECT thread_id FROM threads WHERE user_id = %(user)s)"
QUERIES = (COMMON, "brain", "neuron cortex", "cell or model", '"neuron brain"', "neuron -cell")
PAGES = ((20, 0), (50, 20_500))


@pytest.fixture(scope="module")
def crowded(server_url: str) -> Iterator[str]:
    """The benchmark dataset at head, large enough that the common word matches
    more than 20,000 messages, with a user who owns more than ``LARGE_SCOPE`` threads."""
    url = create_database(server_url, "chatdb_test")
    try:
        dataset.build(url, messages=48_000, threads=4_800, seed=3)
        with Runner(url, MIGRATIONS) as runner:
            runner.migrate()
        database = chatdb.connect(url)
        database.execute_sql(
            "UPDATE threads SET user_id = %s WHERE thread_id IN"
            " (SELECT thread_id FROM threads ORDER BY thread_id LIMIT 400)",
            (str(SERVICE),),
        )
        database.execute_sql("ANALYZE")
        database.close_all()
        yield url
    finally:
        drop_database(server_url, url)


SERVICE = uuid.UUID(int=21)


@pytest.fixture
def db(crowded: str) -> Iterator[chatdb.Database]:
    database = chatdb.connect(crowded)
    models.bind(database)
    yield database
    database.close_all()


def exact(database: pw.Database, query: str, limit: int, offset: int, user=None) -> list[str]:
    sql = EXACT.format(scope=USER_SCOPE if user else "")
    params = {"query": query, "limit": limit, "offset": offset, "user": str(user)}
    return [row[0] for row in database.execute_sql(sql, params).fetchall()]


def ids(hits) -> list[str]:
    return [str(hit.message.message_id) for hit in hits]


def test_the_common_word_matches_more_than_the_old_sample(db):
    (matches,) = db.execute_sql(
        "SELECT count(*) FROM messages WHERE search_vector @@ to_tsquery('english', %s)",
        (COMMON,),
    ).fetchone()
    assert matches > 20_500 + 50


@pytest.mark.parametrize("query", QUERIES)
def test_unscoped_search_is_the_exact_top_of_all_matches(db, query):
    for limit, offset in PAGES:
        hits = chatdb.search_messages(query, limit=limit, offset=offset, timeout=60)
        assert ids(hits) == exact(db, query, limit, offset), (query, offset)
        assert hits.exact is True


def test_the_async_api_is_exact_too(db, crowded):
    async def search() -> chatdb.SearchResults:
        database = await chatdb.aio.connect(crowded, max_connections=1)
        try:
            return await database.search_messages(COMMON, limit=30, offset=40, timeout=60)
        finally:
            await database.close()

    hits = asyncio.run(search())
    assert ids(hits) == exact(db, COMMON, 30, 40) and hits.exact is True


@pytest.mark.parametrize("query", (COMMON, "brain cell", "neuron -model"))
def test_a_scope_larger_than_the_threshold_is_exact_and_reads_the_text_index(db, query):
    owned = db.execute_sql("SELECT count(*) FROM threads WHERE user_id = %s", (str(SERVICE),))
    assert owned.fetchone()[0] > LARGE_SCOPE
    hits = chatdb.search_messages(query, user_id=SERVICE, limit=40, timeout=60)
    assert ids(hits) == exact(db, query, 40, 0, SERVICE) and hits.exact
    # Its rarer matches are found through the text index (a word in half the messages
    # may be read through the thread index instead: the planner's choice, both bounded).
    used = executed_indexes(db, query, user_id=SERVICE)
    assert query == COMMON or "ix_messages_search_vector" in used, used
    # A user of ordinary size is read through the thread index alone.
    user = db.execute_sql(
        "SELECT user_id FROM threads WHERE user_id <> %s LIMIT 1", (str(SERVICE),)
    )
    (small,) = user.fetchone()
    assert "ix_messages_search_vector" not in executed_indexes(db, query, user_id=small)
    assert ids(chatdb.search_messages(query, user_id=small, limit=40)) == exact(
        db, query, 40, 0, small
    )


def executed_indexes(database: pw.Database, query: str, settings=None, **scope) -> set[str]:
    """The indexes the search's plan scanned at least once (under ``settings``)."""
    sql, params, _ = search_sql(query, **scope)
    with database.atomic() as transaction:
        for name, value in (settings or {}).items():
            database.execute_sql("SELECT set_config(%s, %s, true)", (name, value))
        ((plan,),) = run_bounded(database, "EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params, 60)
        transaction.rollback()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    nodes = [node for node, _ in plan_nodes(plan[0]["Plan"])]
    assert not [
        n
        for n in nodes
        if n["Node Type"] == "Seq Scan"
        and n["Actual Loops"]
        and n.get("Relation Name") == "messages"
    ], "a search scanned the whole table"
    return {node["Index Name"] for node in nodes if "Index Name" in node and node["Actual Loops"]}


@pytest.mark.parametrize("settings", PLANNER_MOODS)
def test_an_unscoped_search_reads_its_matches_through_the_index_whatever_the_costs(db, settings):
    # Costs that make a sequential scan look cheapest, as statistics that
    # overrate a word would: the search still reads only its matches.
    cheap_scan = {**settings, "random_page_cost": "1000", "cpu_operator_cost": "0"}
    assert "ix_messages_search_vector" in executed_indexes(db, COMMON, cheap_scan)


def test_a_bound_on_candidates_says_the_ranking_is_not_exact(db):
    sampled = chatdb.search_messages(COMMON, candidates=1_000)
    assert sampled.exact is False and len(sampled) == 20
    ranks = [hit.rank for hit in sampled]
    assert ranks == sorted(ranks, reverse=True)
    # Past the sample there is nothing, and still not exact.
    beyond = chatdb.search_messages(COMMON, candidates=1_000, offset=1_000)
    assert list(beyond) == [] and beyond.exact is False
    # A bound above the matches cuts nothing.
    rare = chatdb.search_messages('"neuron brain"', candidates=100_000, limit=10)
    assert rare.exact is True and ids(rare) == exact(db, '"neuron brain"', 10, 0)
    for wrong in (0, -1, True, 2.5):
        with pytest.raises(ValueError, match="candidates"):
            chatdb.search_messages(COMMON, candidates=wrong)


def test_cli_json_says_whether_each_page_is_exact(db, crowded):
    base = ("search", COMMON, "--json", "--limit", "3", "--database", crowded)
    whole = run_cli(*base)
    assert whole.returncode == 0, whole.stderr
    assert [hit["exact"] for hit in json.loads(whole.stdout)] == [True] * 3
    assert [hit["message_id"] for hit in json.loads(whole.stdout)] == exact(db, COMMON, 3, 0)
    sampled = run_cli(*base, "--candidates", "500")
    assert [hit["exact"] for hit in json.loads(sampled.stdout)] == [False] * 3
    assert "ranked only the first 500 matches" in sampled.stderr


@pytest.fixture
def rum(db) -> Iterator[str]:
    """A RUM index on the search vectors, where the server has the extension."""
    available = db.execute_sql(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'rum'"
    ).fetchone()
    if not available:
        pytest.skip("the server has no RUM extension (Debian: postgresql-NN-rum)")
    # In a schema of its own, as the docs advise: its functions stay out of chatdb's.
    db.execute_sql("CREATE SCHEMA IF NOT EXISTS rum")
    db.execute_sql("CREATE EXTENSION IF NOT EXISTS rum SCHEMA rum")
    db.execute_sql(
        "CREATE INDEX ix_messages_search_vector_rum ON messages USING rum"
        " (search_vector rum.rum_tsvector_ops)"
    )
    try:
        (operator,) = db.execute_sql(RANK_OPERATOR).fetchone()
        yield operator
    finally:
        db.execute_sql("DROP INDEX ix_messages_search_vector_rum")


@pytest.mark.parametrize("query", QUERIES)
def test_with_a_rum_index_the_search_is_still_exact(db, rum, query):
    for limit, offset in PAGES:
        hits = chatdb.search_messages(query, limit=limit, offset=offset, timeout=60)
        assert ids(hits) == exact(db, query, limit, offset), (query, offset)
        assert hits.exact is True
    sql, params, _ = search_sql(query, rank_operator=rum)
    ((plan,),) = run_bounded(db, "EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params, 60)
    plan = json.loads(plan) if isinstance(plan, str) else plan
    ordered = [
        node
        for node, _ in plan_nodes(plan[0]["Plan"])
        if node.get("Index Name") == "ix_messages_search_vector_rum"
        and "Order By" in node
        and node["Actual Loops"]
    ]
    # One word is read in rank order from the RUM index; other queries rank every match.
    assert bool(ordered) == (query in (COMMON, "brain"))


def test_a_rum_index_is_not_drift(db, rum, crowded):
    checked = run_cli("check", "--database", crowded)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "clean" in checked.stdout
    assert rum == "OPERATOR(rum.<=>)"


def test_a_search_has_work_mem_for_exact_bitmaps_and_gives_it_back(db):
    def during() -> str:
        ((setting,),) = run_bounded(db, "SELECT current_setting('work_mem')", {}, 5)
        return str(setting)

    assert during() == "64MB"
    assert db.execute_sql("SHOW work_mem").fetchone()[0] != "64MB"
    with db.atomic() as transaction:
        db.execute_sql("SET LOCAL work_mem = '128MB'")
        assert during() == "128MB"  # raised to the floor, never lowered
        assert db.execute_sql("SHOW work_mem").fetchone()[0] == "128MB"
        transaction.rollback()


def test_only_a_sampled_search_runs_without_parallel_workers(db):
    """A sample must not depend on which worker reads first; an exact order is total."""
    query = "SELECT current_setting('max_parallel_workers_per_gather')"
    server_default = db.execute_sql("SHOW max_parallel_workers_per_gather").fetchone()[0]
    assert server_default != "0"
    assert run_bounded(db, query, {}, 5) == [(server_default,)]
    assert run_bounded(db, query, {}, 5, sampled=True) == [("0",)]
