"""What a search may cost: one plan shape for scoped searches, a cap on terms, a timeout."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import peewee as pw
import pytest

import chatdb
from chatdb.api.search import search_sql
from chatdb.api.search_limits import MAX_QUERY_TERMS, SearchTimeout, cap_terms
from chatdb.migrate.executor import Runner
from chatdb.testing import dataset
from tests.chat_support import chat, chat_url  # noqa: F401
from tests.conftest import MIGRATIONS

TEXT_INDEX = "ix_messages_search_vector"
# The plan must not depend on the planner's estimates: besides the defaults, settings
# that push it to nested loops and index scans, as skewed statistics would.
_NESTED = {"enable_hashjoin": "off", "enable_mergejoin": "off", "enable_material": "off"}
PLANNER_MOODS = (
    {},
    _NESTED,
    {**_NESTED, "enable_seqscan": "off", "enable_memoize": "off"},
    {**_NESTED, "random_page_cost": "100", "effective_cache_size": "8kB"},
)
WORST_QUERIES = (
    " ".join(["-neuron"] * 285),
    " or ".join(["neuron"] * 400),
    "-neuron",
    "neuron",
)


@pytest.fixture
def many_threads(chat) -> tuple[uuid.UUID, uuid.UUID, list[uuid.UUID]]:  # noqa: F811
    """A user with 60 threads in one vlab and project; other users around it."""
    user, vlab, project = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    threads = [chatdb.create_thread(user, vlab_id=vlab, project_id=project) for _ in range(60)]
    others = [chatdb.create_thread(uuid.uuid4()) for _ in range(200)]
    batch = [
        {
            "thread_id": thread.thread_id,
            "entity": "USER" if n % 2 else "AI_MESSAGE",
            "content": {"role": "user", "content": f"neuron cortex message {n} {extra}"},
        }
        for number, thread in enumerate(threads + others)
        for n in range(6)
        # One message of every fourth thread holds a rarer word: an index's favourite.
        for extra in ["hippocampus" if n == 0 and number % 4 == 0 else "of the thread"]
    ]
    chatdb.add_messages(batch)
    chat.execute_sql("ANALYZE")
    return user, vlab, [t.thread_id for t in threads]


def plan_nodes(node: dict, inner_loop: bool = False) -> Iterator[tuple[dict, bool]]:
    """Every node of a JSON plan, with whether it runs on the inner side of a nested loop."""
    yield node, inner_loop
    children = node.get("Plans", [])
    for index, child in enumerate(children):
        inner = inner_loop or (node["Node Type"] == "Nested Loop" and index == 1)
        yield from plan_nodes(child, inner)


def text_index_scans(database: pw.Database, settings: dict, **scope: object) -> list[tuple]:
    """(loops, inner side of a nested loop) of each scan of the text index, under ``settings``."""
    sql, params, _ = search_sql("hippocampus neuron", **scope)
    with database.atomic() as transaction:
        for name, value in settings.items():
            database.execute_sql("SELECT set_config(%s, %s, true)", (name, value))
        (plan,) = database.execute_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params).fetchone()
        transaction.rollback()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return [
        (node["Actual Loops"], inner)
        for node, inner in plan_nodes(plan[0]["Plan"])
        if node.get("Index Name") == TEXT_INDEX
    ]


@pytest.mark.parametrize("settings", PLANNER_MOODS)
@pytest.mark.parametrize("scope", ["user_id", "vlab_id", "project_id", "thread_id"])
def test_scoped_search_never_scans_the_text_index_in_a_loop(chat, many_threads, settings, scope):  # noqa: F811
    user, vlab, threads = many_threads
    value = {"user_id": user, "vlab_id": vlab, "thread_id": threads[0]}.get(scope)
    if scope == "project_id":
        value = chatdb.Thread.get_by_id(threads[0]).project_id
    scans = text_index_scans(chat, settings, **{scope: value})
    assert all(loops <= 1 and not inner for loops, inner in scans), scans
    # Stronger, and what the scope fence guarantees: the scope is read first and the
    # query tested on its rows, so the text index is not scanned at all.
    assert scans == []
    hits = chatdb.search_messages("hippocampus neuron", limit=1000, **{scope: value})
    assert len(hits) == (1 if scope == "thread_id" else 15)


def test_terms_past_the_cap_are_dropped_and_reported():
    query = " ".join(f"w{n}" for n in range(MAX_QUERY_TERMS + 3))
    kept, dropped = cap_terms(query)
    assert kept.split() == query.split()[:MAX_QUERY_TERMS]
    assert dropped == tuple(query.split()[MAX_QUERY_TERMS:])
    assert cap_terms('"a b c" or -d e') == ('"a b c" or -d e', ())
    # A phrase counts each of its words, an "or" counts one.
    assert cap_terms('"a b c" or d', limit=4) == ('"a b c" or', ("d",))
    assert cap_terms("a-b-c-d-e", limit=4) == ("", ("a-b-c-d-e",))


def test_search_reports_what_it_dropped(chat):  # noqa: F811
    hits = chatdb.search_messages(" or ".join(["neuron"] * 400))
    assert hits == [] and len(hits.dropped) > 300
    assert chatdb.search_messages("neuron").dropped == ()


@pytest.fixture
def realistic(db_url: str) -> Iterator[pw.PostgresqlDatabase]:
    """Twenty thousand messages of the benchmark dataset, at head."""
    dataset.build(db_url, messages=20_000, threads=2_000, seed=1)
    with Runner(db_url, MIGRATIONS) as runner:
        runner.migrate()
    database = chatdb.connect(db_url)
    yield database
    database.close()


@pytest.mark.parametrize("query", WORST_QUERIES)
def test_worst_shaped_queries_answer_or_fail_cleanly(realistic, query):
    user = realistic.execute_sql("SELECT user_id FROM threads LIMIT 1").fetchone()[0]
    for scope in ({}, {"user_id": user}):
        try:
            hits = chatdb.search_messages(query, timeout=2, **scope)
        except SearchTimeout as exc:
            assert "longer than 2 s" in str(exc)
        else:
            assert len(hits) <= 20
            assert bool(hits.dropped) == (len(query.split()) > MAX_QUERY_TERMS)
    # Nothing of the search is left running on the server.
    running = realistic.execute_sql(
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%%websearch_to_tsquery%%'"
        " AND pid <> pg_backend_pid() AND state = 'active'"
    ).fetchone()[0]
    assert running == 0


def test_a_search_past_its_timeout_is_cancelled_by_the_server(realistic):
    with pytest.raises(SearchTimeout, match=r"longer than 0\.001 s"):
        chatdb.search_messages(" ".join(["-neuron"] * 16), timeout=0.001)
    # The connection is usable and the session's own timeout untouched.
    assert realistic.execute_sql("SHOW statement_timeout").fetchone()[0] == "0"
    with realistic.atomic():
        realistic.execute_sql("SET LOCAL statement_timeout = '7s'")
        chatdb.search_messages("neuron", timeout=1)
        assert realistic.execute_sql("SHOW statement_timeout").fetchone()[0] == "7s"
    with pytest.raises(ValueError, match="timeout"):
        chatdb.search_messages("neuron", timeout=0)


@pytest.mark.parametrize("page", [{"limit": True}, {"limit": False}, {"offset": True}])
def test_booleans_are_not_page_sizes(chat, page):  # noqa: F811
    with pytest.raises(ValueError, match=r"limit|offset"):
        chatdb.search_messages("neuron", **page)
