"""Ranked full-text search over messages, safe with any query string.

The query goes to PostgreSQL only as a bound parameter of
``websearch_to_tsquery('english', ...)``, which accepts any text (web-search
syntax: ``"exact phrase"``, ``or``, ``-word``; everything else is words), so
no string can inject SQL or raise a syntax error. The few things PostgreSQL
cannot take at all are handled first: NUL characters and unpaired
surrogates become spaces, and a query is cut at :data:`MAX_QUERY_CHARS` (a
huge query would otherwise exhaust the parser's stack).

The tsquery is written inline as an immutable call on a constant, so the
planner folds it and estimates its selectivity from the column statistics:
a user- or thread-scoped search walks that scope's messages through the
thread indexes, an unscoped one uses the GIN index. Ranking happens in the
inner query; snippets, the costly part, only for the page returned.

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
from dataclasses import dataclass

from chatdb.api.chats import as_uuid, check_limit
from chatdb.schema.enums import Entity
from chatdb.schema.models import Message

MAX_QUERY_CHARS = 2000
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


def clean_query(query: str) -> str:
    """``query`` as PostgreSQL can receive it (see the module docstring)."""
    if not isinstance(query, str):
        raise TypeError(f"query must be a string, not {type(query).__name__}")
    return _UNSENDABLE.sub(" ", query[:MAX_QUERY_CHARS])


def search_messages(
    query: str,
    *,
    user_id: uuid.UUID | str | None = None,
    thread_id: uuid.UUID | str | None = None,
    vlab_id: uuid.UUID | str | None = None,
    project_id: uuid.UUID | str | None = None,
    limit: int = 20,
    offset: int = 0,
) -> list[SearchHit]:
    """Messages matching ``query``, best first, optionally within a user, thread, vlab, project.

    A query without searchable words (empty, only stop words or punctuation)
    matches nothing.
    """
    check_limit(limit)
    if not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset must be a non-negative integer, got {offset!r}")
    marker = secrets.token_hex(8)
    params: dict[str, object] = {"query": clean_query(query), "limit": limit, "offset": offset}
    params["headline"] = f"StartSel=s{marker}, StopSel=e{marker}, {HEADLINE_OPTIONS}"
    conditions = [f"m.search_vector @@ {_TSQUERY}"]
    join = ""
    if thread_id is not None:
        conditions.append("m.thread_id = %(thread_id)s")
        params["thread_id"] = as_uuid(thread_id, "thread_id")
    for name, value in (("user_id", user_id), ("vlab_id", vlab_id), ("project_id", project_id)):
        if value is not None:
            join = "JOIN threads t ON t.thread_id = m.thread_id"
            conditions.append(f"t.{name} = %({name})s")
            params[name] = as_uuid(value, name)
    sql = f"""
        SELECT hit.message_id, hit.creation_date, hit.content, hit.thread_id, hit.entity,
               hit.is_complete, hit.rank,
               ts_headline('english', hit.content::jsonb ->> 'content', {_TSQUERY},
                           %(headline)s) AS snippet
        FROM (
            SELECT m.message_id, m.creation_date, m.content, m.thread_id, m.entity,
                   m.is_complete, ts_rank_cd(m.search_vector, {_TSQUERY}) AS rank
            FROM messages m {join}
            WHERE {" AND ".join(conditions)}
            ORDER BY rank DESC, m.creation_date DESC, m.message_id
            LIMIT %(limit)s OFFSET %(offset)s
        ) hit
        ORDER BY hit.rank DESC, hit.creation_date DESC, hit.message_id
    """
    cursor = Message._meta.database.execute_sql(sql, params)
    return [_hit(marker, *row) for row in cursor.fetchall()]


def render_snippet(headline: str, marker: str) -> str:
    """``ts_headline``'s text as HTML: all of it escaped, its markers turned into ``<b>``."""
    bold = {f"s{marker}": "<b>", f"e{marker}": "</b>"}
    pieces = re.split(f"([se]{marker})", headline)
    return "".join(bold.get(piece) or html.escape(piece, quote=True) for piece in pieces)


def _hit(marker: str, *row: object) -> SearchHit:
    message_id, creation_date, content, thread_id, entity, is_complete, rank, snippet = row
    thread_uuid = uuid.UUID(str(thread_id))
    message = Message(
        message_id=uuid.UUID(str(message_id)),
        creation_date=creation_date,
        content=content,
        thread=thread_uuid,
        entity=Entity[str(entity)],
        is_complete=is_complete,
    )
    return SearchHit(message, thread_uuid, float(rank), render_snippet(str(snippet or ""), marker))
