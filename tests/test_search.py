"""Ranked full-text search: agrees with plain SQL, and no query string can hurt."""

from __future__ import annotations

import html
import random
import uuid

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import chatdb
from chatdb.api.search import MAX_QUERY_CHARS
from chatdb.api.snippets import HEADLINE_OPTIONS, WINDOW, render_snippet, window
from tests.chat_support import chat, chat_url, fingerprint, seed  # noqa: F401

GROUND_TRUTH = """
    SELECT m.message_id::text
    FROM messages m JOIN threads t ON t.thread_id = m.thread_id
    WHERE m.entity IN ('USER', 'AI_MESSAGE')
      AND to_tsvector('english', coalesce(m.content::jsonb ->> 'content', ''))
          @@ websearch_to_tsquery('english', %(query)s)
      AND (%(user)s::uuid IS NULL OR t.user_id = %(user)s::uuid)
      AND (%(thread)s::uuid IS NULL OR m.thread_id = %(thread)s::uuid)
"""
QUERIES = (
    "neuron",
    "cortex synapse",
    '"firing rate"',
    "dopamine or glutamate",
    "neuron -cortex",
    "neurons firing",
    "current voltage membrane",
    "the",
    "",
)


@pytest.fixture
def seeded(chat):  # noqa: F811
    return seed()


def truth(database, query: str, user=None, thread=None) -> set[str]:
    params = {"query": query, "user": user and str(user), "thread": thread and str(thread)}
    return {row[0] for row in database.execute_sql(GROUND_TRUTH, params).fetchall()}


@pytest.mark.parametrize("query", QUERIES)
def test_results_match_plain_sql(chat, seeded, query):  # noqa: F811
    user = seeded[1]
    thread = chatdb.list_threads(user)[0].thread_id
    for scope in ({}, {"user_id": user}, {"thread_id": thread}):
        hits = chatdb.search_messages(query, limit=1000, **scope)
        expected = truth(chat, query, scope.get("user_id"), scope.get("thread_id"))
        assert {str(hit.message.message_id) for hit in hits} == expected, scope
        ranks = [hit.rank for hit in hits]
        assert ranks == sorted(ranks, reverse=True)
    assert truth(chat, "neuron"), "the seed must give the common word some matches"


def test_hits_carry_thread_rank_and_highlighted_snippet(chat, seeded):  # noqa: F811
    hits = chatdb.search_messages("neuron synapse", user_id=seeded[0])
    assert hits
    for hit in hits:
        assert hit.thread_id == hit.message.thread_id
        assert hit.rank > 0
        assert "<b>neuron</b>" in hit.snippet and "<b>synapse</b>" in hit.snippet
        assert hit.message.entity in (chatdb.Entity.USER, chatdb.Entity.AI_MESSAGE)
        assert chatdb.Thread.get_by_id(hit.thread_id).user_id == seeded[0]


def test_offset_pages_through_the_same_ranking(chat, seeded):  # noqa: F811
    everything = chatdb.search_messages("neuron", limit=1000)
    paged = []
    for offset in range(0, len(everything), 7):
        paged += chatdb.search_messages("neuron", limit=7, offset=offset)
    assert [h.message.message_id for h in paged] == [h.message.message_id for h in everything]
    with pytest.raises(ValueError, match="offset"):
        chatdb.search_messages("neuron", offset=-1)
    with pytest.raises(ValueError, match="limit"):
        chatdb.search_messages("neuron", limit=0)


def test_vlab_and_project_scopes(chat, seeded):  # noqa: F811
    # The seed puts each user's threads in a vlab named by the user's id.
    by_vlab = chatdb.search_messages("neuron", vlab_id=seeded[2], limit=1000)
    by_user = chatdb.search_messages("neuron", user_id=seeded[2], limit=1000)
    assert by_vlab and [h.message.message_id for h in by_vlab] == [
        h.message.message_id for h in by_user
    ]
    assert chatdb.search_messages("neuron", project_id=uuid.uuid4()) == []


def test_only_user_and_assistant_text_is_searched(chat):  # noqa: F811
    thread = chatdb.create_thread(uuid.uuid4())
    chatdb.add_message(thread.thread_id, "TOOL", {"role": "tool", "content": "axon"})
    chatdb.add_message(thread.thread_id, "USER", {"role": "user", "content": "axons"})
    (hit,) = chatdb.search_messages("axon")
    assert hit.message.entity is chatdb.Entity.USER


NASTY = (
    "'; DROP TABLE messages; --",
    '"unclosed phrase',
    "a & b | !c <-> d:* (e",
    "-",
    "or or or",
    "\x00neuron\x00",
    "neuron \ud800 cortex",
    "нейрон 神经元 عصبون",
    "x" * 5000,
    "neuron " * 100_000,
    "%(query)s %s {} \\",
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(query=st.text() | st.text(alphabet="\"'-()&|!:*<> \\orneuoNOT\x00", max_size=40))
@example(query="")
@example(query="neuron " * 3000)
def test_any_string_is_a_harmless_query(chat, seeded, query):  # noqa: F811
    before = fingerprint(chat)
    for scope in ({}, {"user_id": seeded[0]}):
        hits = chatdb.search_messages(query, **scope)
        assert len(hits) <= 20
    assert fingerprint(chat) == before


@pytest.mark.parametrize("query", NASTY)
def test_nasty_queries_are_plain_searches(chat, seeded, query):  # noqa: F811
    before = fingerprint(chat)
    chatdb.search_messages(query, user_id=seeded[0])
    chatdb.search_messages(query)
    assert fingerprint(chat) == before


def test_queries_are_cleaned_not_refused(chat, seeded):  # noqa: F811
    assert chatdb.search_messages("\x00neuron\x00", limit=3)
    long_tail = "neuron or " + "x" * (2 * MAX_QUERY_CHARS)
    assert chatdb.search_messages(long_tail, limit=3)


def test_terms_past_the_character_cut_are_reported_dropped(chat, seeded):  # noqa: F811
    padding = " ".join(["neuron"] * ((MAX_QUERY_CHARS // 7) - 1))
    hits = chatdb.search_messages(f"{padding} pastthecut1 pastthecut2", limit=3)
    assert hits.dropped[-2:] == ("pastthecut1", "pastthecut2"), hits.dropped
    # A token straddling the cut is dropped whole, never searched half.
    straddle = "a" * (MAX_QUERY_CHARS - 3) + " straddling"
    assert chatdb.search_messages(straddle, limit=1).dropped == ("straddling",)
    with pytest.raises(chatdb.InvalidInput, match="query must be a string"):
        chatdb.search_messages(b"neuron")


def _only_chatdb_markup(snippet: str) -> str:
    """The snippet without chatdb's <b>/</b>, asserting nothing else is markup."""
    text = snippet.replace("<b>", "").replace("</b>", "")
    assert "<" not in text and ">" not in text and '"' not in text and "'" not in text
    assert html.escape(html.unescape(text)) == text, "every & starts an entity chatdb wrote"
    return html.unescape(text)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"])))
@example(text="neurons <img src=x onerror=alert(1)//")
@example(text="<b>neuron</b> &amp; </b><script>x</script> &lt;")
def test_snippets_are_escaped_html_with_only_chatdb_markers(chat, text):  # noqa: F811
    thread = chatdb.create_thread(uuid.uuid4())
    content = f"{text} neuron {text}"
    chatdb.add_message(thread.thread_id, "USER", {"role": "user", "content": content})
    hits = chatdb.search_messages("neuron", thread_id=thread.thread_id)
    assert len(hits) == 1
    snippet = hits[0].snippet
    assert "<b>neuron</b>" in snippet
    # ts_headline keeps the message's words and drops what its parser takes for tags.
    for word in _only_chatdb_markup(snippet).split():
        assert word == "..." or word in content, (word, content)


HEADLINE_SQL = """
    SELECT m.message_id::text, ts_headline('english', m.content::jsonb ->> 'content',
        websearch_to_tsquery('english', %(query)s), %(options)s)
    FROM messages m WHERE m.message_id = ANY(%(ids)s::uuid[])
"""


def _whole_text_snippets(database, query: str, ids: list[str]) -> dict[str, str]:
    """The snippets ``ts_headline`` makes over each message's whole text, rendered as chatdb's."""
    options = f"StartSel=sMARK, StopSel=eMARK, {HEADLINE_OPTIONS}"
    rows = database.execute_sql(HEADLINE_SQL, {"query": query, "options": options, "ids": ids})
    return {key: render_snippet(headline, "MARK") for key, headline in rows.fetchall()}


@pytest.mark.parametrize("query", ["neuron", "cortex synapse", "dopamine or glutamate"])
def test_a_short_message_s_snippet_is_ts_headline_over_its_whole_text(chat, seeded, query):  # noqa: F811
    hits = chatdb.search_messages(query, limit=1000)
    assert hits and all(len(hit.message.content["content"]) <= WINDOW for hit in hits)
    ids = [str(hit.message.message_id) for hit in hits]
    expected = _whole_text_snippets(chat, query, ids)
    assert {str(hit.message.message_id): hit.snippet for hit in hits} == expected


def _filler(words: int, seed: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(("alpha", "beta", "gamma", "delta", "omega")) for _ in range(words))


@pytest.mark.parametrize("written", ["hippocampus", "Hippocampus", "HIPPOCAMPUS"])
def test_a_long_message_s_snippet_is_drawn_around_its_first_match(chat, written):  # noqa: F811
    thread = chatdb.create_thread(uuid.uuid4()).thread_id
    text = f"{_filler(8000, 1)} {written} region {_filler(6000, 2)} hippocampus again"
    assert len(text) > 20 * WINDOW
    chatdb.add_message(thread, "USER", {"role": "user", "content": text})
    chatdb.add_message(thread, "USER", {"role": "user", "content": "short hippocampus note"})
    hits = chatdb.search_messages("hippocampus", thread_id=thread)
    (short,) = [h for h in hits if h.message.content["content"] != text]
    assert short.snippet == "short <b>hippocampus</b> note"  # made by the search itself
    (hit,) = [h for h in hits if h.message.content["content"] == text]
    assert f"<b>{written}</b>" in hit.snippet and "region" in hit.snippet
    assert "again" not in hit.snippet  # the second match lies outside the window
    part = window(text, ["hippocampus"])
    assert len(part) <= WINDOW and written in part and text.find(part) > 0
    # whole words only, and the snippet is ts_headline's over that part
    assert text[text.find(part) - 1] == " " and text[text.find(part) + len(part)] == " "
    options = f"StartSel=sMARK, StopSel=eMARK, {HEADLINE_OPTIONS}"
    (headline,) = chat.execute_sql(
        "SELECT ts_headline('english', %s, websearch_to_tsquery('english', 'hippocampus'), %s)",
        (part, options),
    ).fetchone()
    assert hit.snippet == render_snippet(headline, "MARK")


def test_a_long_message_without_a_findable_match_gives_its_start(chat):  # noqa: F811
    thread = chatdb.create_thread(uuid.uuid4()).thread_id
    # "happy" stems to "happi", which no word of the text starts with
    text = f"opening words {_filler(4000, 3)} happy {_filler(100, 4)}"
    chatdb.add_message(thread, "USER", {"role": "user", "content": text})
    (hit,) = chatdb.search_messages("happy", thread_id=thread)
    assert hit.snippet.startswith("opening words") and len(hit.snippet) < WINDOW


def test_snippets_false_gives_the_same_hits_without_snippets(chat, seeded):  # noqa: F811
    for scope in ({}, {"user_id": seeded[0]}):
        full = chatdb.search_messages("neuron synapse", limit=50, **scope)
        bare = chatdb.search_messages("neuron synapse", limit=50, snippets=False, **scope)
        assert full and all("<b>" in hit.snippet for hit in full)
        assert [(h.message.message_id, h.rank) for h in bare] == [
            (h.message.message_id, h.rank) for h in full
        ]
        assert {hit.snippet for hit in bare} == {""}
    with pytest.raises(chatdb.InvalidInput, match="snippets must be True or False"):
        chatdb.search_messages("neuron", snippets="no")  # type: ignore[arg-type]
