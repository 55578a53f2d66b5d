"""Why scoped search has the shape it has: three query shapes on the same data, two states.

On a legacy database handed over to head (``chatdb handover``), right after
the handover and again after ``VACUUM ANALYZE``, user-scoped searches (top 20
by rank, no snippets, so only the shape differs) in three shapes:

- ``join``: ``messages JOIN threads`` with the tsquery and the user in one
  WHERE, the planner free to choose (the shape before);
- ``cte``: a ``MATERIALIZED`` CTE of the user's messages, then the tsquery;
- ``fence``: ``thread_id = ANY(ARRAY(SELECT ... WHERE user_id = ...))``
  behind ``OFFSET 0``, then the tsquery (what ``search_sql`` issues).

    python -m bench.bench_search_shapes [--server URL] [--messages N]
        [--legacy NAME: an existing legacy database on --server, instead of building one]
"""

from __future__ import annotations

import argparse
import os
import time
import uuid

import psycopg2

from bench import report
from bench.bench_chat import SCOPED_QUERIES, summary, timings, typical_scopes
from bench.server import (
    add_server_option,
    copy_database,
    drop_database,
    legacy_database,
    scratch_database,
    server,
)
from chatdb.api.connection import connect
from chatdb.legacy import handover
from chatdb.migrate import history
from chatdb.migrate.executor import Runner
from chatdb.testing import dataset

RANKED = (
    "SELECT m.message_id, ts_rank_cd(m.search_vector, q) AS rank FROM {source}"
    " ORDER BY rank DESC, m.creation_date DESC, m.message_id LIMIT 20"
)
Q = "websearch_to_tsquery('english', %(query)s)"
SHAPES = {
    "join": RANKED.format(
        source=f"messages m JOIN threads t ON t.thread_id = m.thread_id, {Q} q"
        " WHERE m.search_vector @@ q AND t.user_id = %(user)s"
    ),
    "cte": "WITH scope AS MATERIALIZED (SELECT m.* FROM messages m JOIN threads t"
    " ON t.thread_id = m.thread_id WHERE t.user_id = %(user)s) "
    + RANKED.format(source=f"scope m, {Q} q WHERE m.search_vector @@ q"),
    "fence": RANKED.format(
        source="(SELECT * FROM messages m WHERE m.thread_id = ANY(ARRAY("
        "SELECT t.thread_id FROM threads t WHERE t.user_id = %(user)s)) OFFSET 0) m,"
        f" {Q} q WHERE m.search_vector @@ q"
    ),
}


def measure(url: str, users: list[uuid.UUID], state: str) -> list[str]:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    rows = []
    try:
        with conn.cursor() as cursor:
            for query in SCOPED_QUERIES:
                for shape, sql in SHAPES.items():
                    turn = iter(range(10**9))

                    def run(sql: str = sql, query: str = query, turn=turn) -> None:
                        user = users[next(turn) % len(users)]
                        cursor.execute(sql, {"query": query, "user": user})
                        cursor.fetchall()

                    median, p95 = summary(timings(run, 100))
                    print(f"{state} {query!r} {shape}: {median:.2f} / {p95:.2f}", flush=True)
                    rows.append(
                        f"| {state} | `{query}` | {shape} | {median:.2f} ms | {p95:.2f} ms |"
                    )
    finally:
        conn.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_server_option(parser)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--legacy", help="an existing legacy database on --server")
    args = parser.parse_args()
    with server(args.server) as admin, scratch_database(admin) as scratch:
        legacy = legacy_database(admin, scratch, args.legacy, args.messages)
        head = copy_database(admin, legacy)
        try:
            with Runner(head) as runner:
                history.drop(runner.database)
                started = time.perf_counter()
                handover.handover(runner)
                print(f"handover {time.perf_counter() - started:.1f} s", flush=True)
            database = connect(head)
            users = typical_scopes(database)["user_id"]
            counts = dataset.row_counts(head)
            database.close()
            rows = measure(head, users, "fresh from handover")
            conn = psycopg2.connect(head)
            conn.autocommit = True
            conn.cursor().execute("VACUUM ANALYZE")
            conn.close()
            rows += measure(head, users, "after VACUUM ANALYZE")
        finally:
            drop_database(admin, head)
    report.update_section(
        "search-shapes",
        "\n".join(
            [
                "## Scoped search: choosing the query shape",
                "",
                f"`python -m bench.bench_search_shapes` on {report.machine()} (load average"
                f" {os.getloadavg()[0]:.1f}, shared): {counts['messages']:,} messages (English"
                " text, bench/vocabulary.py), handed over to head, user-scoped top 20 by"
                f" rank without snippets, rotating over {len(users)} users with 18-22 threads,"
                " 100 searches per row. `join`: the query before (messages joined to threads,"
                " the planner free); `cte`: a `MATERIALIZED` CTE of the user's messages;"
                " `fence`: `thread_id = ANY(ARRAY(subquery))` behind `OFFSET 0`, the tsquery"
                " tested above it (what `chatdb/api/search.py` issues).",
                "",
                "| database | query | shape | median | p95 |",
                "| --- | --- | --- | ---: | ---: |",
                *rows,
                "",
                "`join` depends on the statistics: right after the handover the planner may"
                " pick a nested loop over the user's threads that scans the GIN index once per"
                " thread. `cte` and `fence` never touch the GIN index for a scoped search and"
                " cost what the scope's messages cost; `fence` also streams the rows instead"
                " of copying them into a tuplestore, and reads the messages with one scan of"
                " the thread index for all the scope's threads.",
            ]
        ),
    )


if __name__ == "__main__":
    main()
