"""Ranked full-text search over messages, safe with any query string.

The query goes to PostgreSQL only as a bound parameter of
``websearch_to_tsquery('english', ...)``, which accepts any text (web-search
syntax: ``"exact phrase"``, ``or``, ``-word``; everything else is words), so
no string can inject SQL or raise a syntax error. The few things PostgreSQL
cannot take at all are handled first: NUL characters and unpaired
surrogates become spaces, and a query is cut at :data:`MAX_QUERY_CHARS` (a
huge query would otherwise exhaust the parser's stack).

The tsquery is written inline as an immutable call on a constant, so the
planner folds it. Every search returns the exact top of its ranking
(``ts_rank_cd``, ties newest first, then by message id) over all its
matches, unless the caller bounds the matches ranked (``candidates``); the
result's ``exact`` says which. How each search is planned is in
:func:`search_sql` and the pieces it calls. Cost bounds (a cap on terms, a
statement timeout) are in ``chatdb.api.search_limits``.

Snippets, the costly part, are made only for the page returned, over a
bounded part of each hit's text (a long hit's in a second statement:
``chatdb.api.snippets``, which also says how they stay safe HTML), or not
at all with ``snippets=False``.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from chatdb.api import pages
from chatdb.api.checks import as_uuid, check_limit, check_offset
from chatdb.api.search_limits import (
    DEFAULT_TIMEOUT,
    SearchResults,
    cap_terms,
    check_timeout,
    run_bounded,
)
from chatdb.api.session import session
from chatdb.api.snippets import (
    HEADLINE_OPTIONS,
    HEADLINES,
    body,
    columns,
    render_snippet,
    window,
)
from chatdb.errors import InvalidInput, NotFound
from chatdb.schema.content import read_json_text
from chatdb.schema.enums import Entity
from chatdb.schema.models import Message, Thread

MAX_QUERY_CHARS = 2000
LARGE_SCOPE = 200  # threads from which an owner's scope is searched through the text index
TIES_READ = 1_000  # matches a RUM-ordered search reads past its page, for ties (_index_ordered)
# What ts_headline puts around a match (s<MARKER>, e<MARKER>), turned into <b> afterwards. No
# text can carry it on purpose: it is drawn at random per process and never leaves it; one per
# process (not per search) so that the pattern splitting headlines is compiled once.
MARKER = secrets.token_hex(8)
_UNSENDABLE = re.compile("[\x00\ud800-\udfff]")
_TSQUERY = "websearch_to_tsquery('english', %(query)s)"


@dataclass(frozen=True)
class SearchHit:
    """One matching message, its thread, its rank and an HTML snippet: ``<b>`` around matches
    (empty when the search ran with ``snippets=False``)."""

    message: Message
    thread_id: uuid.UUID
    rank: float
    snippet: str


def clean_query(query: str) -> tuple[str, tuple[str, ...]]:
    """``query`` as PostgreSQL can receive it (see the module docstring), and the tokens
    past the :data:`MAX_QUERY_CHARS` cut (made at white space, never inside a token)."""
    if not isinstance(query, str):
        raise InvalidInput(f"query must be a string, not {type(query).__name__}")
    query = _UNSENDABLE.sub(" ", query)
    if len(query) <= MAX_QUERY_CHARS:
        return query, ()
    cut = max(query.rfind(space, 0, MAX_QUERY_CHARS + 1) for space in " \t\n\r\f\v")
    cut = cut if cut > 0 else MAX_QUERY_CHARS
    return query[:cut], tuple(query[cut:].split())


def search_messages(
    query: str,
    *,
    user_id: uuid.UUID | str | None = None,
    thread_id: uuid.UUID | str | None = None,
    vlab_id: uuid.UUID | str | None = None,
    project_id: uuid.UUID | str | None = None,
    limit: int = 20,
    offset: int = 0,
    timeout: float = DEFAULT_TIMEOUT,
    candidates: int | None = None,
    snippets: bool = True,
) -> SearchResults:
    """Messages matching ``query``, best first, optionally within a user, thread, vlab, project.

    A query without searchable words (empty, only stop words or punctuation)
    matches nothing. Terms past ``search_limits.MAX_QUERY_TERMS`` are left out
    and listed in the result's ``dropped``; a search running longer than
    ``timeout`` seconds raises ``SearchTimeout`` (see ``chatdb.api.search_limits``).
    ``candidates`` bounds an unscoped search to ranking that many matches (the
    first the index returns); the result's ``exact`` is false when it cut the
    ranking short. A ``thread_id`` that names no thread is
    :class:`~chatdb.errors.NotFound`. With ``snippets=False`` the hits'
    snippets are empty and cost nothing.
    """
    search = Search(
        query,
        user_id,
        thread_id,
        vlab_id,
        project_id,
        limit,
        offset,
        timeout,
        candidates,
        snippets=snippets,
    )
    with session("search_messages", writes=False) as database:
        operator = None
        if search.index_order_helps:
            operator = index_order(database.execute_sql(RANK_OPERATOR).fetchone())
        statement = search.statement(operator)
        hits = search.results(run_bounded(database, *statement, timeout, sampled=search.sampled))
        if not hits and search.thread is not None:
            _thread_exists(search.thread)
        headlines = search.headlines(hits)
        if headlines is not None:
            return search.with_snippets(hits, run_bounded(database, *headlines, search.time_left()))
    return hits


class Search:
    """One search, checked and ready to run: its statement, and how its rows become hits."""

    def __init__(
        self,
        query: str,
        user_id: uuid.UUID | str | None,
        thread_id: uuid.UUID | str | None,
        vlab_id: uuid.UUID | str | None,
        project_id: uuid.UUID | str | None,
        limit: int,
        offset: int,
        timeout: float,
        candidates: int | None = None,
        *,
        snippets: bool = True,
    ):
        self.timeout = check_timeout(timeout)
        self.started = time.monotonic()
        if not isinstance(snippets, bool):
            raise InvalidInput(f"snippets must be True or False, not {snippets!r}")
        self.snippets = snippets
        self.marker = MARKER
        self.headline = f"StartSel=s{self.marker}, StopSel=e{self.marker}, {HEADLINE_OPTIONS}"
        self._arguments: dict[str, Any] = {
            "user_id": user_id,
            "thread_id": thread_id,
            "vlab_id": vlab_id,
            "project_id": project_id,
            "limit": limit,
            "offset": offset,
            "candidates": candidates,
            "headline": self.headline if snippets else None,
        }
        self._query = query
        plain, self.params, self.dropped = search_sql(query, **self._arguments)
        self._plain = plain
        self.thread = self.params.get("thread_id")
        self.sampled = candidates is not None
        # Only an unscoped search that ranks every match can read matches in rank order.
        self.index_order_helps = candidates is None and not any(
            value is not None for value in (user_id, thread_id, vlab_id, project_id)
        )
        self.terms: list[str] = []  # the query's lexemes, as the search statement gives them
        self.long: list[int] = []  # positions of the hits whose snippet is still to be made

    def statement(self, rank_operator: str | None = None) -> tuple[str, dict[str, object]]:
        """The statement and its parameters, reading matches in rank order from a RUM
        index when ``rank_operator`` names one."""
        if not rank_operator:
            return self._plain, self.params
        sql, params, _ = search_sql(self._query, rank_operator=rank_operator, **self._arguments)
        return sql, params

    def results(self, rows: Iterable[Sequence[Any]]) -> SearchResults:
        """The hits of the search's rows; a long hit's snippet is left for :meth:`headlines`.

        An empty page is one row of NULLs, which still says whether ranking was cut.
        """
        hits = SearchResults()
        self.long = []
        cut = False
        for row in rows:
            *fields, snippet, self.terms, cut = row
            if fields[0] is None:
                continue
            if snippet is None and self.snippets:
                self.long.append(len(hits))
            hits.append(_hit(*fields, render_snippet(str(snippet or ""), self.marker)))
        hits.dropped = self.dropped
        hits.exact = not cut
        return hits

    def headlines(self, hits: Sequence[SearchHit]) -> tuple[str, dict[str, object]] | None:
        """The statement that makes the snippets of the long hits, if there are any."""
        if not self.long:
            return None
        texts = [body(hits[n].message.content) for n in self.long]
        return HEADLINES, {
            "query": self.params["query"],
            "headline": self.headline,
            "bodies": [None if text is None else window(text, self.terms) for text in texts],
            "ids": [str(hits[n].message.message_id) for n in self.long],
        }

    def with_snippets(
        self, hits: SearchResults, headlines: Iterable[Sequence[Any]]
    ) -> SearchResults:
        """``hits`` with the long hits' snippets from :meth:`headlines`' rows, in order."""
        made = SearchResults(hits)
        for n, row in zip(self.long, headlines, strict=True):
            made[n] = dataclasses.replace(
                hits[n], snippet=render_snippet(str(row[0] or ""), self.marker)
            )
        made.dropped = hits.dropped
        made.exact = hits.exact
        return made

    def time_left(self) -> float:
        """Seconds of the search's timeout not yet spent (at least a millisecond)."""
        return max(0.001, self.timeout - (time.monotonic() - self.started))


# The ``<=>`` of a valid RUM index on messages.search_vector alone, schema-qualified.
RANK_OPERATOR = """
    SELECT 'OPERATOR(' || quote_ident(n.nspname) || '.<=>)'
    FROM pg_index i
    JOIN pg_opclass o ON o.oid = i.indclass[0]
    JOIN pg_namespace n ON n.oid = o.opcnamespace
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
    WHERE i.indrelid = to_regclass('messages') AND i.indnatts = 1 AND i.indisvalid
      AND i.indpred IS NULL AND a.attname = 'search_vector' AND o.opcname = 'rum_tsvector_ops'
    LIMIT 1
"""


def index_order(row: Sequence[Any] | None) -> str | None:
    """The rank operator :data:`RANK_OPERATOR` found, or None: no RUM index, plain plans."""
    return str(row[0]) if row else None


def _thread_exists(thread: object) -> None:
    if not Thread.select().where(Thread.thread_id == thread).exists():
        raise NotFound(f"no thread {thread}")


def search_sql(
    query: str,
    *,
    user_id: uuid.UUID | str | None = None,
    thread_id: uuid.UUID | str | None = None,
    vlab_id: uuid.UUID | str | None = None,
    project_id: uuid.UUID | str | None = None,
    limit: int = 20,
    offset: int = 0,
    candidates: int | None = None,
    rank_operator: str | None = None,
    headline: str | None = HEADLINE_OPTIONS,
) -> tuple[str, dict[str, object], tuple[str, ...]]:
    """The statement :func:`search_messages` runs, its parameters, and the terms it dropped.

    Its rows are the page of hits, each with ``cut``: true when ``candidates``
    stopped the ranking short of all matches. ``rank_operator`` is the
    schema-qualified ``<=>`` of a RUM index on the search vectors (see
    :func:`index_order`), or None: without it every plan is the plain one.
    """
    check_limit(limit)
    check_offset(offset)
    check_candidates(candidates)
    kept, beyond = clean_query(query)
    text, capped = cap_terms(kept)
    params: dict[str, object] = {"query": text, "limit": limit, "offset": offset}
    params["headline"] = headline
    scope, owners = _scope(params, user_id, thread_id, vlab_id, project_id)
    if scope and owners and thread_id is None:
        params["large_scope"] = LARGE_SCOPE
        source = _owned(scope, owners)
    elif scope:
        source = _fenced(scope)
    elif candidates is not None:
        params["candidates"] = candidates
        source = _sampled()
    elif rank_operator:
        params["reach"] = offset + limit + TIES_READ
        source = _index_ordered(rank_operator)
    else:
        source = _all_matches()
    page = _page(source, cut=candidates is not None and not scope, snippets=headline is not None)
    return page, params, (*capped, *beyond)


def check_candidates(candidates: object) -> None:
    """``candidates`` is None (rank every match) or a positive number of matches to rank."""
    if candidates is not None and (
        isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1
    ):
        raise InvalidInput(f"candidates must be None or a positive integer, got {candidates!r}")


def _scope(
    params: dict[str, object],
    user_id: object,
    thread_id: object,
    vlab_id: object,
    project_id: object,
) -> tuple[str, str]:
    """The condition on ``messages m`` that keeps the scope's messages ("" unscoped),
    and the one on ``threads t`` that keeps its owner's threads ("" for none)."""
    scope = []
    if thread_id is not None:
        scope.append("m.thread_id = %(thread_id)s")
        params["thread_id"] = as_uuid(thread_id, "thread_id")
    owners = []
    for name, value in (("user_id", user_id), ("vlab_id", vlab_id), ("project_id", project_id)):
        if value is not None:
            owners.append(f"t.{name} = %({name})s")
            params[name] = as_uuid(value, name)
    owned = " AND ".join(owners)
    if owned:
        scope.append(f"m.thread_id = ANY(ARRAY(SELECT t.thread_id FROM threads t WHERE {owned}))")
    return " AND ".join(scope), owned


def _fenced(scope: str) -> str:
    """A scope's matches: its messages read behind an ``OFFSET 0`` fence (the thread
    ids from one index scan, the messages from one scan of ``messages.thread_id``'s
    index), the query tested on those rows. Cost bounded by the scope whatever the
    statistics, and the full-text index is never probed once per thread."""
    return f"""
        SELECT * FROM (SELECT * FROM messages m WHERE {scope} OFFSET 0) m
        WHERE m.search_vector @@ {_TSQUERY}
    """


def _owned(scope: str, owners: str) -> str:
    """An owner's matches, by the plan the number of its threads calls for (counted,
    never estimated; the count stops at :data:`LARGE_SCOPE`).

    Fewer threads: :func:`_fenced`. More (a service account): the full-text and
    thread indexes together, so only the scope's matches are read. Only the
    chosen branch runs.
    """
    large = (
        f"(SELECT count(*) FROM (SELECT FROM threads t WHERE {owners} LIMIT %(large_scope)s) n)"
        " >= %(large_scope)s"
    )
    return f"""
        SELECT * FROM (SELECT * FROM messages m WHERE {scope} AND NOT {large} OFFSET 0) m
        WHERE m.search_vector @@ {_TSQUERY}
        UNION ALL
        SELECT * FROM messages m WHERE m.search_vector @@ {_TSQUERY} AND {scope} AND {large}
    """


def _all_matches() -> str:
    return f"SELECT * FROM messages m WHERE m.search_vector @@ {_TSQUERY}"


def _sampled() -> str:
    """The first ``candidates`` matches the index returns (table order): a bounded sample."""
    return f"SELECT * FROM messages m WHERE m.search_vector @@ {_TSQUERY} LIMIT %(candidates)s"


def _index_ordered(distance: str) -> str:
    """Every match that can be in the page, read in rank order from a RUM index.

    For a query of one word, a RUM index's order (``<=>``) is by the word's
    occurrences in the message, as ``ts_rank_cd``'s is, so the page is among
    the first matches in that order: the page's last distance, and every match
    tied with it. The scan reads :data:`TIES_READ` matches past the page; when
    the ties run past that, or the query is not one word, every match is
    ranked instead (the plain plan, run only then).
    """
    ordered = f"m.search_vector {distance} {_TSQUERY}"
    return f"""
        WITH by_index AS MATERIALIZED (
            SELECT m.message_id, {ordered} AS distance FROM messages m
            WHERE m.search_vector @@ {_TSQUERY} AND numnode({_TSQUERY}) = 1
            ORDER BY {ordered} LIMIT %(reach)s
        ), edge AS MATERIALIZED (
            SELECT (SELECT distance FROM by_index ORDER BY distance
                    OFFSET %(offset)s + %(limit)s - 1 LIMIT 1) AS last
        ), covered AS MATERIALIZED (
            SELECT numnode({_TSQUERY}) = 1 AND (count(*) < %(reach)s
                   OR max(distance) > (SELECT last FROM edge)) AS ok FROM by_index
        )
        SELECT m.* FROM messages m WHERE (SELECT ok FROM covered) AND m.message_id IN (
            SELECT message_id FROM by_index
            WHERE distance <= (SELECT coalesce(last, 'infinity') FROM edge))
        UNION ALL
        SELECT * FROM messages m WHERE NOT (SELECT ok FROM covered)
            AND m.search_vector @@ {_TSQUERY}
    """


def _page(source: str, cut: bool, snippets: bool) -> str:
    """The page of ``source``'s rows by rank (ties: newest first, then by id), with snippets.

    Ranking happens in the inner query; snippets, the costly part, only for the
    page returned. The page hangs off a one-row ``bound`` (so an empty page is one
    row of NULLs): with ``cut``, whether the sample ranked was smaller than all
    matches, counted once and stopping one past the sample.
    """
    cut_expression = (
        "count(*) > %(candidates)s FROM (SELECT FROM messages m"
        f" WHERE m.search_vector @@ {_TSQUERY} LIMIT %(candidates)s + 1) c"
        if cut
        else "false"
    )
    return f"""
        SELECT hit.message_id, hit.creation_date, hit.content, hit.thread_id, hit.entity,
               hit.is_complete, hit.rank, {columns(_TSQUERY, snippets)}, bound.cut
        FROM (SELECT {cut_expression}) bound (cut) LEFT JOIN (
            SELECT m.message_id, m.creation_date, m.content, m.thread_id, m.entity,
                   m.is_complete, ts_rank_cd(m.search_vector, {_TSQUERY}) AS rank
            FROM ({source}) m
            ORDER BY rank DESC, m.creation_date DESC, m.message_id
            LIMIT %(limit)s OFFSET %(offset)s
        ) hit ON true
        ORDER BY hit.rank DESC, hit.creation_date DESC, hit.message_id
    """


def _hit(*row: Any) -> SearchHit:
    message_id, creation_date, content, thread_id, entity, is_complete, rank, snippet = row
    thread_uuid = pages.standard_uuid(thread_id)
    message = pages.model(
        Message,
        {
            "message_id": pages.standard_uuid(message_id),
            "creation_date": creation_date,
            "content": read_json_text(content),
            "thread": thread_uuid,
            "entity": Entity[str(entity)],
            "is_complete": is_complete,
        },
    )
    return SearchHit(message, thread_uuid, float(rank), snippet)
