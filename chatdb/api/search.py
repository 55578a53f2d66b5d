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
only for the page returned. Cost bounds (a cap on terms, a statement
timeout) are in ``chatdb.api.search_limits``.

Snippets are HTML, safe by construction: ``ts_headline`` marks matches with
a fresh random marker per search, then every piece of message text is
HTML-escaped and only the markers become ``<b>``/``</b>``. Whatever a
message holds, the snippet's only markup is chatdb's own.
"""

from __future__ import annotations

import html
import re
import secrets
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
from chatdb.errors import InvalidInput, NotFound
from chatdb.schema.content import read_json_text
from chatdb.schema.enums import Entity
from chatdb.schema.models import Message, Thread

MAX_QUERY_CHARS = 2000
RANK_CANDIDATES = 20_000  # matches an unscoped search ranks at most (see search_sql)
HEADLINE_OPTIONS = "MaxWords=35, MinWords=15, MaxFragments=2"
_UNSENDABLE = re.compile("[\x00\ud800-\udfff]")
_TSQUERY = "websearch_to_tsquery('english', %(query)s)"


@dataclass(frozen=True)
class SearchHit:
    """One matching message, its thread, its rank and an HTML snippet: ``<b>`` around matches."""

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
) -> SearchResults:
    """Messages matching ``query``, best first, optionally within a user, thread, vlab, project.

    A query without searchable words (empty, only stop words or punctuation)
    matches nothing. Terms past ``search_limits.MAX_QUERY_TERMS`` are left out
    and listed in the result's ``dropped``; a search running longer than
    ``timeout`` seconds raises ``SearchTimeout`` (see ``chatdb.api.search_limits``).
    A ``thread_id`` that names no thread is :class:`~chatdb.errors.NotFound`.
    """
    search = Search(query, user_id, thread_id, vlab_id, project_id, limit, offset, timeout)
    with session("search_messages", writes=False) as database:
        rows = run_bounded(database, search.sql, search.params, timeout)
        if not rows and search.thread is not None:
            _thread_exists(search.thread)
    return search.results(rows)


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
    ):
        check_timeout(timeout)
        self.marker = secrets.token_hex(8)
        self.sql, self.params, self.dropped = search_sql(
            query,
            user_id=user_id,
            thread_id=thread_id,
            vlab_id=vlab_id,
            project_id=project_id,
            limit=limit,
            offset=offset,
            headline=f"StartSel=s{self.marker}, StopSel=e{self.marker}, {HEADLINE_OPTIONS}",
        )
        self.thread = self.params.get("thread_id")

    def results(self, rows: Iterable[Sequence[Any]]) -> SearchResults:
        hits = SearchResults(_hit(self.marker, *row) for row in rows)
        hits.dropped = self.dropped
        return hits


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
    headline: str = HEADLINE_OPTIONS,
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
               hit.is_complete, hit.rank,
               ts_headline('english', hit.content::jsonb ->> 'content', {_TSQUERY},
                           %(headline)s) AS snippet
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


def render_snippet(headline: str, marker: str) -> str:
    """``ts_headline``'s text as HTML: all of it escaped, its markers turned into ``<b>``."""
    bold = {f"s{marker}": "<b>", f"e{marker}": "</b>"}
    pieces = re.split(f"([se]{marker})", headline)
    return "".join(bold.get(piece) or html.escape(piece, quote=True) for piece in pieces)


def _hit(marker: str, *row: Any) -> SearchHit:
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
    return SearchHit(message, thread_uuid, float(rank), render_snippet(str(snippet or ""), marker))
