"""Ranked full-text search over messages, safe with any query string.

The query goes to PostgreSQL only as a bound parameter of
``websearch_to_tsquery('english', ...)``, which accepts any text (web-search
syntax: ``"exact phrase"``, ``or``, ``-word``; everything else is words), so
no string can inject SQL or raise a syntax error. The few things PostgreSQL
cannot take at all are handled first: NUL characters and unpaired
surrogates become spaces, and a query is cut at :data:`MAX_QUERY_CHARS` (a
huge query would otherwise exhaust the parser's stack).

The tsquery is written inline as an immutable call on a constant, so the
planner folds it. A scoped search (user, vlab, project, thread) reads its
scope's messages through the thread indexes and tests the query on each, one
plan whatever the statistics (see :func:`search_sql`); an unscoped one uses
the GIN index. Ranking happens in the inner query; snippets, the costly part,
only for the page returned, over a bounded part of each hit's text (a long
hit's in a second statement: ``chatdb.api.snippets``), or not at all with
``snippets=False``. Cost bounds (a cap on terms, a statement timeout) are in
``chatdb.api.search_limits``.
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
RANK_CANDIDATES = 20_000  # matches an unscoped search ranks at most (see search_sql)
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
    snippets: bool = True,
) -> SearchResults:
    """Messages matching ``query``, best first, optionally within a user, thread, vlab, project.

    A query without searchable words (empty, only stop words or punctuation)
    matches nothing. Terms past ``search_limits.MAX_QUERY_TERMS`` are left out
    and listed in the result's ``dropped``; a search running longer than
    ``timeout`` seconds raises ``SearchTimeout`` (see ``chatdb.api.search_limits``).
    A ``thread_id`` that names no thread is :class:`~chatdb.errors.NotFound`.
    With ``snippets=False`` the hits' snippets are empty and cost nothing.
    """
    search = Search(
        query, user_id, thread_id, vlab_id, project_id, limit, offset, timeout, snippets=snippets
    )
    with session("search_messages", writes=False) as database:
        rows = run_bounded(database, search.sql, search.params, timeout)
        if not rows and search.thread is not None:
            _thread_exists(search.thread)
        hits = search.results(rows)
        headlines = search.headlines(hits)
        if headlines is not None:
            sql, params = headlines
            return search.with_snippets(
                hits, run_bounded(database, sql, params, search.time_left())
            )
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
        *,
        snippets: bool = True,
    ):
        self.timeout = check_timeout(timeout)
        self.started = time.monotonic()
        if not isinstance(snippets, bool):
            raise InvalidInput(f"snippets must be True or False, not {snippets!r}")
        self.snippets = snippets
        self.marker = secrets.token_hex(8)
        self.headline = f"StartSel=s{self.marker}, StopSel=e{self.marker}, {HEADLINE_OPTIONS}"
        self.sql, self.params, self.dropped = search_sql(
            query,
            user_id=user_id,
            thread_id=thread_id,
            vlab_id=vlab_id,
            project_id=project_id,
            limit=limit,
            offset=offset,
            headline=self.headline if snippets else None,
        )
        self.thread = self.params.get("thread_id")
        self.terms: list[str] = []  # the query's lexemes, as the search statement gives them
        self.long: list[int] = []  # positions of the hits whose snippet is still to be made

    def results(self, rows: Iterable[Sequence[Any]]) -> SearchResults:
        """The hits of the search's rows; a long hit's snippet is left for :meth:`headlines`."""
        hits = SearchResults()
        self.long = []
        for row in rows:
            *fields, snippet, self.terms = row
            if snippet is None and self.snippets:
                self.long.append(len(hits))
            hits.append(_hit(*fields, render_snippet(str(snippet or ""), self.marker)))
        hits.dropped = self.dropped
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
        return made

    def time_left(self) -> float:
        """Seconds of the search's timeout not yet spent (at least a millisecond)."""
        return max(0.001, self.timeout - (time.monotonic() - self.started))


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
    headline: str | None = HEADLINE_OPTIONS,
) -> tuple[str, dict[str, object], tuple[str, ...]]:
    """The statement :func:`search_messages` runs, its parameters, and the terms it dropped.

    A scoped search reads its scope's messages behind an ``OFFSET 0`` fence
    (the thread ids come from one index scan, the messages from one scan of
    ``messages.thread_id``'s index) and tests the query on those rows: its
    cost is bounded by the size of the scope whatever the statistics say,
    and the full-text index is never probed once per thread.

    An unscoped search ranks at most :data:`RANK_CANDIDATES` matches, the
    first the index scan returns (in table order): ranking reads each
    match's row, so ranking all of a common word's matches costs time in
    proportion to them. Fewer matches than that are all ranked, exactly.
    """
    check_limit(limit)
    check_offset(offset)
    kept, beyond = clean_query(query)
    text, capped = cap_terms(kept)
    dropped = (*capped, *beyond)
    params: dict[str, object] = {"query": text, "limit": limit, "offset": offset}
    params["headline"] = headline
    scope = []
    if thread_id is not None:
        scope.append("m.thread_id = %(thread_id)s")
        params["thread_id"] = as_uuid(thread_id, "thread_id")
    owners = []
    for name, value in (("user_id", user_id), ("vlab_id", vlab_id), ("project_id", project_id)):
        if value is not None:
            owners.append(f"t.{name} = %({name})s")
            params[name] = as_uuid(value, name)
    if owners:
        scope.append(
            "m.thread_id = ANY(ARRAY(SELECT t.thread_id FROM threads t"
            f" WHERE {' AND '.join(owners)}))"
        )
    if scope:
        source = (
            f"(SELECT * FROM messages m WHERE {' AND '.join(scope)} OFFSET 0) m"
            f" WHERE m.search_vector @@ {_TSQUERY}"
        )
    else:
        source = (
            f"(SELECT * FROM messages m WHERE m.search_vector @@ {_TSQUERY} LIMIT %(candidates)s) m"
        )
        params["candidates"] = RANK_CANDIDATES
    sql = f"""
        SELECT hit.message_id, hit.creation_date, hit.content, hit.thread_id, hit.entity,
               hit.is_complete, hit.rank, {columns(_TSQUERY, headline is not None)}
        FROM (
            SELECT m.message_id, m.creation_date, m.content, m.thread_id, m.entity,
                   m.is_complete, ts_rank_cd(m.search_vector, {_TSQUERY}) AS rank
            FROM {source}
            ORDER BY rank DESC, m.creation_date DESC, m.message_id
            LIMIT %(limit)s OFFSET %(offset)s
        ) hit
        ORDER BY hit.rank DESC, hit.creation_date DESC, hit.message_id
    """
    return sql, params, dropped


def _hit(*row: Any) -> SearchHit:
    message_id, creation_date, content, thread_id, entity, is_complete, rank, snippet = row
    thread_uuid = uuid.UUID(str(thread_id))
    message = Message(
        message_id=uuid.UUID(str(message_id)),
        creation_date=creation_date,
        content=read_json_text(content),
        thread=thread_uuid,
        entity=Entity[str(entity)],
        is_complete=is_complete,
    )
    return SearchHit(message, thread_uuid, float(rank), snippet)
