"""Bounds on what one search may cost: a cap on query terms, and a statement timeout.

``websearch_to_tsquery`` accepts queries of any shape, and some shapes are
ruinous: hundreds of ``-word`` or ``word or word`` terms make every match
(and, for negations, nearly every message) pay for every term, for minutes.
Two bounds, one per cause:

- :func:`cap_terms` keeps the first :data:`MAX_QUERY_TERMS` terms of the
  query (a word, each word of a phrase, and each ``or`` count one) and says
  which it dropped; the search returns them in ``SearchResults.dropped``;
- :func:`run_bounded` runs the search after ``SET LOCAL statement_timeout``
  in its own transaction (a savepoint inside the caller's), so the server
  stops the query itself, even when the client has gone; hitting it raises
  :class:`SearchTimeout`. A ``SET LOCAL`` never outlives its transaction,
  so this is safe behind a transaction-mode pooler.
"""

from __future__ import annotations

import re
from typing import Any

import peewee as pw
from psycopg2.extensions import TRANSACTION_STATUS_IDLE

from chatdb.db.sqlstate import QUERY_CANCELED, sqlstate
from chatdb.errors import ChatdbError, InvalidInput

MAX_QUERY_TERMS = 16
DEFAULT_TIMEOUT = 5.0  # seconds
# A quoted phrase (perhaps unclosed) or a run of non-blanks, as websearch_to_tsquery reads them.
_TOKEN = re.compile(r'"[^"]*"?|[^\s"]+')
_WORD = re.compile(r"[^\W_]+")
_SAVEPOINT = "chatdb_search"


class SearchTimeout(ChatdbError):
    """The search ran longer than its statement timeout; the server cancelled it."""


class SearchResults(list):
    """A list of hits; ``dropped`` holds the query terms left out by the cap, in order;
    ``exact`` is false when a bound on the matches ranked (``candidates``) cut the
    ranking short, so the hits are the best of a sample, not of all matches."""

    dropped: tuple[str, ...] = ()
    exact: bool = True


def cap_terms(query: str, limit: int = MAX_QUERY_TERMS) -> tuple[str, tuple[str, ...]]:
    """``query`` cut after its first ``limit`` terms, and the tokens cut off."""
    kept: list[str] = []
    dropped: list[str] = []
    terms = 0
    for token in _TOKEN.findall(query):
        if not dropped:
            terms += 1 if token.lower() == "or" else len(_WORD.findall(token))
        (dropped if dropped or terms > limit else kept).append(token)
    return (" ".join(kept), tuple(dropped)) if dropped else (query, ())


# Bytes: the least work_mem a search runs with (see limits_sql). A common word's bitmap at
# ten million messages needs more than 16 MB to stay exact (docs/DATA_API.md).
WORK_MEM = 64 * 1024 * 1024
MAX_TIMEOUT = 2_147_483.0  # seconds: statement_timeout is an int of milliseconds


def check_timeout(timeout: object) -> float:
    """``timeout`` if it is a number of seconds PostgreSQL can take; ``InvalidInput`` otherwise."""
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout <= MAX_TIMEOUT
    ):
        raise InvalidInput(
            f"timeout must be a positive number of seconds up to {MAX_TIMEOUT:g}, got {timeout!r}"
        )
    return float(timeout)


def limits_sql(timeout: float, *, sampled: bool = False) -> str:
    """The settings a search runs under, for ``SET LOCAL`` in its own transaction."""
    check_timeout(timeout)
    # Sequential scans are a last resort: a search reads its matches through an index,
    # at a cost in proportion to them, not a whole table because the statistics
    # misjudged a word. work_mem is raised to at least WORK_MEM, so that the bitmap of a
    # common word's matches stays exact instead of lossy (each message of a lossy page
    # re-tested). A sampled search (``candidates``) runs without parallel workers: it
    # ranks the first matches the scan returns, which must not depend on which worker
    # ran first; an exact search's order is total, so workers only make it faster.
    serial = " SET LOCAL max_parallel_workers_per_gather = 0;" if sampled else ""
    return (
        f"SET LOCAL statement_timeout = {max(1, round(timeout * 1000))};{serial}"
        " SET LOCAL enable_seqscan = off;"
        " SELECT set_config('work_mem', greatest(pg_size_bytes(current_setting('work_mem')),"
        f" {WORK_MEM}) / 1024 || 'kB', true);"
    )


def timed_out(timeout: float) -> SearchTimeout:
    return SearchTimeout(
        f"search took longer than {timeout:g} s and was cancelled; narrow the query "
        "(fewer or rarer words, a user or thread scope) or pass a larger timeout"
    )


def run_bounded(
    database: pw.Database,
    sql: str,
    params: dict[str, object],
    timeout: float,
    *,
    sampled: bool = False,
) -> list[tuple[Any, ...]]:
    """The rows of ``sql``, which the server cancels after ``timeout`` seconds.

    The settings travel in the same round trip as the query (a multi-statement
    message is one implicit transaction, and each statement in it starts its
    own timeout, from PostgreSQL 13 on). Inside the caller's transaction they
    are scoped to a savepoint that is rolled back afterwards (the search wrote
    nothing), so the caller's own settings come back.
    """
    limits = limits_sql(timeout, sampled=sampled)
    idle = database.connection().info.transaction_status == TRANSACTION_STATUS_IDLE
    prefix = limits if idle else f"SAVEPOINT {_SAVEPOINT}; {limits}"
    try:
        return database.execute_sql(prefix + sql, params).fetchall()
    except pw.DatabaseError as exc:
        if sqlstate(exc) != QUERY_CANCELED:
            raise
        raise timed_out(timeout) from exc
    finally:
        if not idle:
            database.execute_sql(
                f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}; RELEASE SAVEPOINT {_SAVEPOINT}"
            )
