"""The chat API at a million messages: search latency, bulk append, reindex throughput.

Builds the legacy-shaped dataset (chatdb/testing/dataset.py), clones it, migrates the
clone to head, and measures from Python through ``chatdb``'s API:

- scoped search (users with about twenty threads, their vlabs, projects and
  threads) right after ``chatdb handover`` and again after ``VACUUM ANALYZE``;
- unscoped search for a common word against the bare ranked query on the
  legacy schema, side by side;
- ``add_messages`` (COPY) of 100,000 messages against raw psycopg2 ``execute_values``
  of the same rows (the search trigger fires in both);
- ``reindex_search`` throughput.

Figures go into docs/benchmarks.md.

    python -m bench.bench_chat [--server URL] [--messages N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import time
import tracemalloc
import uuid
from collections.abc import Callable
from typing import Any

import peewee as pw
import psycopg2
from psycopg2.extras import execute_values

import chatdb
from bench import report
from bench.server import add_server_option, copy_database, drop_database, scratch_database, server
from bench.vocabulary import english
from chatdb.api.batch import CHUNK_ROWS
from chatdb.api.chats import MESSAGE_COLUMNS
from chatdb.api.search import search_sql
from chatdb.db.copy import copy_rows
from chatdb.legacy import handover
from chatdb.migrate import history
from chatdb.migrate.executor import Runner
from chatdb.schema.models import bind
from chatdb.testing import dataset

APPEND_ROWS = 100_000
APPEND_THREADS = 1_000
SCOPED_QUERIES = ("hippocampus neurons", "good work", "neuron")
UNSCOPED_QUERY = "neuron"


def timings(call: Callable[[], object], runs: int, warmup: int = 3) -> list[float]:
    """Milliseconds of each of ``runs`` calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def summary(times: list[float]) -> tuple[float, float]:
    """(median, p95) in milliseconds."""
    p95 = statistics.quantiles(times, n=20)[18] if len(times) > 1 else times[0]
    return statistics.median(times), p95


def typical_scopes(database: pw.Database, count: int = 100) -> dict[str, list[uuid.UUID]]:
    """Users with 18-22 threads, and a vlab, a project and a thread of each."""
    rows = database.execute_sql(
        "SELECT user_id, (array_agg(vlab_id) FILTER (WHERE vlab_id IS NOT NULL))[1],"
        " (array_agg(project_id) FILTER (WHERE project_id IS NOT NULL))[1],"
        " (array_agg(thread_id ORDER BY thread_id))[1]"
        " FROM threads GROUP BY user_id HAVING count(*) BETWEEN 18 AND 22"
        " ORDER BY user_id LIMIT %s",
        (count,),
    ).fetchall()
    names = ("user_id", "vlab_id", "project_id", "thread_id")
    return {
        name: [uuid.UUID(str(row[i])) for row in rows if row[i] is not None]
        for i, name in enumerate(names)
    }


def scoped_search(scope: str, ids: list[uuid.UUID], query: str, runs: int) -> list[float]:
    turn = iter(range(10**9))
    return timings(
        lambda: chatdb.search_messages(query, **{scope: ids[next(turn) % len(ids)]}), runs
    )


def match_count(database: pw.Database, query: str) -> int:
    return database.execute_sql(
        "SELECT count(*) FROM messages WHERE search_vector @@ websearch_to_tsquery('english', %s)",
        (query,),
    ).fetchone()[0]


BARE_RANKED = (
    "SELECT message_id, ts_rank_cd(search_vector, websearch_to_tsquery('english', %(q)s)) AS rank"
    " FROM messages WHERE search_vector @@ websearch_to_tsquery('english', %(q)s)"
    " ORDER BY rank DESC LIMIT 20"
)


def scoped_rows(
    head: pw.Database, scopes: dict[str, list[uuid.UUID]], state: str | None = None
) -> list[str]:
    """Table rows of scoped-search p50/p95 per scope and query; ``state`` adds a first column."""
    bind(head)
    first = f"| {state} " if state else ""
    rows = []
    for query in SCOPED_QUERIES:
        for scope, ids in scopes.items():
            median, p95 = summary(scoped_search(scope, ids, query, runs=200))
            print(f"{state or 'head'}: {scope} {query!r}: {median:.2f} / {p95:.2f} ms", flush=True)
            rows.append(
                f"{first}| {scope.removesuffix('_id')} | `{query}` | {median:.2f} ms |"
                f" {p95:.2f} ms |"
            )
    return rows


def search_section(
    head: pw.Database, legacy: pw.Database, counts: dict[str, int], handover_seconds: float
) -> str:
    bind(head)
    scopes = typical_scopes(head)
    sql, params, _ = search_sql(SCOPED_QUERIES[0], user_id=scopes["user_id"][0])
    plan = head.execute_sql("EXPLAIN (ANALYZE, COSTS OFF) " + sql, params).fetchall()
    print("plan (user-scoped):\n" + "\n".join(row[0] for row in plan), flush=True)
    matches = {query: match_count(head, query) for query in (*SCOPED_QUERIES, UNSCOPED_QUERY)}
    fresh = scoped_rows(head, scopes, "fresh from handover")
    head.execute_sql("VACUUM ANALYZE")
    analyzed = scoped_rows(head, scopes, "after VACUUM ANALYZE")
    # Unscoped: the API on head and the bare ranked query on legacy, alternating.
    api_times, bare_times = [], []
    for _ in range(15):
        bind(head)
        api_times += timings(lambda: chatdb.search_messages(UNSCOPED_QUERY), 1, warmup=0)
        bare_times += timings(
            lambda: legacy.execute_sql(BARE_RANKED, {"q": UNSCOPED_QUERY}).fetchall(),
            1,
            warmup=0,
        )
    api, bare = summary(api_times[2:]), summary(bare_times[2:])
    print(f"unscoped {UNSCOPED_QUERY!r}: api {api}, bare legacy {bare}", flush=True)
    command = "python -m bench.bench_chat --messages " + str(counts["messages"])
    return "\n".join(
        [
            "## Search (`chatdb.search_messages`)",
            "",
            f"`{command}` (needs `pip install -e '.[bench]'`) on {report.machine()}, load"
            f" average {os.getloadavg()[0]:.1f} (machine shared): "
            f"{counts['messages']:,} messages in {counts['threads']:,} threads, text drawn by "
            "real English word frequency (`wordfreq`, 50,000 words) with 1.2% neuroscience "
            "terms (bench/vocabulary.py). The legacy database is handed over to head with "
            f"`chatdb handover` ({handover_seconds:.1f} s) and searched at once, with the "
            "statistics the copy has, then again after `VACUUM ANALYZE`. Measured from Python "
            "through the API, 20 hits per search with snippets, rotating over "
            f"{len(scopes['user_id'])} users with 18-22 threads (and a vlab, project, "
            "thread of each); 200 searches per row.",
            "",
            "Matches in the whole database: "
            + ", ".join(f"`{query}` {n:,}" for query, n in matches.items())
            + ".",
            "",
            "| database | scope | query | median | p95 |",
            "| --- | --- | --- | ---: | ---: |",
            *fresh,
            *analyzed,
            "",
            "Goal: scoped p50 ≤ 2 ms and p95 ≤ 5 ms in both states. A scoped search reads its"
            " scope's messages through the thread indexes and tests the query on them"
            " (`chatdb/api/search.py`, `search_sql`): one plan whatever the statistics, never"
            " the text index once per thread (before, `good work` took 60-140 ms on a fresh"
            " copy: a nested loop re-scanning the GIN index for each of the user's threads).",
            "",
            f"Unscoped, `{UNSCOPED_QUERY}` ({matches[UNSCOPED_QUERY]:,} matches), top 20,"
            " alternating, 15 runs each (first two dropped):",
            "",
            "| | median | p95 |",
            "| --- | ---: | ---: |",
            f"| `chatdb.search_messages` (head, with snippets) | {api[0]:.1f} ms |"
            f" {api[1]:.1f} ms |",
            f"| bare ranked query on legacy (`ts_rank_cd`, all matches) | {bare[0]:.1f} ms |"
            f" {bare[1]:.1f} ms |",
            "",
            f"Ratio API / bare: **{api[0] / bare[0]:.2f}**. An unscoped search ranks every"
            " match exactly; how to make a common word fast, measured, is in the exact-search"
            " section (`python -m bench.bench_exact_search`).",
        ]
    )


def append_rows(rng: random.Random, thread_ids: list[uuid.UUID], count: int) -> list[dict]:
    rows = []
    for index in range(count):
        user_turn = index % 2 == 0
        rows.append(
            {
                "thread_id": thread_ids[index % len(thread_ids)],
                "entity": "USER" if user_turn else "AI_MESSAGE",
                "content": {
                    "role": "user" if user_turn else "assistant",
                    "content": dataset.sentence_text(rng, 18 if user_turn else 60, english()),
                },
            }
        )
    return rows


def raw_insert(cursor: Any, rows: list[tuple]) -> None:
    execute_values(
        cursor,
        "INSERT INTO messages (message_id, creation_date, content, thread_id, entity,"
        " is_complete) VALUES %s",
        rows,
        template="(%s, %s, %s, %s, %s::entity, %s)",
        page_size=1000,
    )


def raw_copy(cursor: Any, rows: list[tuple]) -> None:
    copy_rows(cursor, "messages", MESSAGE_COLUMNS, rows)


def copy_without_search(cursor: Any, rows: list[tuple]) -> None:
    """Raw COPY with the search trigger off, in the same transaction: not a way in, a floor."""
    cursor.execute("ALTER TABLE messages DISABLE TRIGGER messages_search_vector_trigger")
    raw_copy(cursor, rows)
    cursor.execute("ALTER TABLE messages ENABLE TRIGGER messages_search_vector_trigger")


def vector_seconds(url: str, threads: list[uuid.UUID]) -> float:
    """Seconds the server takes to build the search vectors of ``threads``' messages alone."""
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cursor:
            started = time.perf_counter()
            cursor.execute(
                "SELECT count(to_tsvector('english', content::jsonb ->> 'content'))"
                " FROM messages WHERE thread_id = ANY(%s::uuid[])",
                ([str(t) for t in threads],),
            )
            return time.perf_counter() - started
    finally:
        conn.close()


def raw_seconds(url: str, write: Callable[[Any, list[tuple]], None], rows: list[tuple]) -> float:
    """Seconds to write prepared rows with ``write`` in one transaction, committed."""
    conn = psycopg2.connect(url)
    try:
        started = time.perf_counter()
        with conn, conn.cursor() as cursor:
            write(cursor, rows)
        return time.perf_counter() - started
    finally:
        conn.close()


def prepared(rows: list[dict], threads: list[uuid.UUID]) -> list[tuple]:
    """``rows`` as raw tuples (ids, timestamps, JSON text), into ``threads``."""
    now = dt.datetime.now(dt.UTC)
    return [
        (
            str(uuid.uuid4()),
            now + dt.timedelta(microseconds=n),
            json.dumps(row["content"]),
            str(threads[n % len(threads)]),
            row["entity"],
            True,
        )
        for n, row in enumerate(rows)
    ]


def peak_memory(rows: list[dict]) -> float:
    """Megabytes of Python memory ``chatdb.add_messages(rows)`` holds at its peak, beyond
    ``rows`` themselves (tracemalloc: allocations made by Python code and the driver)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        chatdb.add_messages(rows)
        return (tracemalloc.get_traced_memory()[1] - before) / 1e6
    finally:
        tracemalloc.stop()


def append_section(
    url: str,
    head: pw.Database,
    count: int,
    base: int,
    command: str = "python -m bench.bench_append",
) -> str:
    """``count`` messages appended to a database at head of ``base`` messages, four ways."""
    bind(head)
    rng = random.Random(6)
    ways = {
        "execute_values": raw_insert,
        "COPY": raw_copy,
        "COPY, search trigger off": copy_without_search,
    }
    times: dict[str, list[float]] = {name: [] for name in (*ways, "api", "vectors")}
    for _round in range(3):

        def new_threads() -> list[uuid.UUID]:
            return [chatdb.create_thread(uuid.uuid4()).thread_id for _ in range(APPEND_THREADS)]

        api_threads = new_threads()
        api_rows = append_rows(rng, api_threads, count)
        for name, write in ways.items():
            times[name].append(raw_seconds(url, write, prepared(api_rows, new_threads())))
        started = time.perf_counter()
        chatdb.add_messages(api_rows)
        times["api"].append(time.perf_counter() - started)
        times["vectors"].append(vector_seconds(url, api_threads))
        print(f"append round: { {k: round(v[-1], 2) for k, v in times.items()} }", flush=True)
    peak = peak_memory(append_rows(rng, [chatdb.create_thread(uuid.uuid4()).thread_id], count))
    median = {name: statistics.median(values) for name, values in times.items()}
    raw, copy, api = median["execute_values"], median["COPY"], median["api"]
    untriggered = median["COPY, search trigger off"]
    return "\n".join(
        [
            "## Bulk append (`chatdb.add_messages`)",
            "",
            f"`{command}` (load average {os.getloadavg()[0]:.1f} on"
            f" {report.machine()}, machine shared): {count:,} user and assistant messages"
            f" (English text, 18 and 60 words on average) into {APPEND_THREADS:,}"
            f" threads of a database of {base:,} messages at head, one call, one transaction;"
            " the search trigger and every index are maintained. Raw: psycopg2"
            " `execute_values` (1,000 rows per statement), or one `COPY`, of the same rows,"
            " already as tuples with ids, timestamps and JSON text. The API starts from dicts,"
            " and checks each message (content, ids, timestamps) as its row is streamed with"
            f" `COPY`, {CHUNK_ROWS:,} messages per `COPY` with their children after them, so"
            " the server writes while Python checks; it moves the threads' `update_date` at"
            " the end, in the same transaction. Median of three rounds, alternating.",
            "",
            "| | seconds | messages/s |",
            "| --- | ---: | ---: |",
            *(
                f"| {label} | {median[name]:.2f} | {count / median[name]:,.0f} |"
                for name, label in (
                    ("execute_values", "raw `execute_values`"),
                    ("COPY", "raw `COPY`"),
                    ("api", "`chatdb.add_messages`"),
                    ("COPY, search trigger off", "raw `COPY`, search trigger disabled (a floor)"),
                    ("vectors", "the search vectors alone (`to_tsvector` of the same texts)"),
                )
            ),
            "",
            "Throughput ratio API / raw `COPY` round by round (the load varies between"
            " rounds): "
            + ", ".join(f"{c / a:.2f}" for c, a in zip(times["COPY"], times["api"], strict=True))
            + f"; of the medians: **{copy / api:.2f}** (goal ≥ 0.95); API /"
            f" raw `execute_values`: {raw / api:.2f}; raw `COPY` / raw `execute_values`:"
            f" {raw / copy:.2f}. The search trigger (parsing the JSON, building the vector)"
            f" and the GIN entries it feeds are {(copy - untriggered) / copy:.0%} of raw"
            " `COPY`'s time, server work every way in pays per row: raw `COPY` is the limit"
            " of any client writing through one session. Peak Python memory of"
            f" `add_messages` for {count:,} messages (tracemalloc, beyond the caller's list of"
            f" dicts, one more untimed call): **{peak:.1f} MB**, mostly the ids it returns;"
            " it holds one chunk's children at a time, never all the rows.",
        ]
    )


def reindex_section(head: pw.Database) -> str:
    bind(head)
    final = chatdb.reindex_search(batch_size=1000)
    print(f"reindex: {final.done} rows in {final.elapsed:.1f}s", flush=True)
    return "\n".join(
        [
            "## `chatdb reindex-search`",
            "",
            f"Every message of the database after the appends ({final.done:,} rows),"
            " batches of 1,000 rows by primary key, each its own transaction:"
            f" {final.elapsed:.0f} s, **{final.rate:,.0f} rows/s**.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_server_option(parser)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=100_000)
    parser.add_argument("--append", type=int, default=APPEND_ROWS, help="messages per append")
    args = parser.parse_args()
    with server(args.server) as admin, scratch_database(admin) as legacy_url:
        started = time.perf_counter()
        dataset.build(
            legacy_url, messages=args.messages, threads=args.threads, vocabulary=english()
        )
        counts = dataset.row_counts(legacy_url)
        print(f"built in {time.perf_counter() - started:.0f}s: {counts}", flush=True)
        head_url = copy_database(admin, legacy_url)
        try:
            with Runner(head_url) as runner:
                # Built with chatdb's baseline; without its history it is a legacy database.
                history.drop(runner.database)
                started = time.perf_counter()
                handover.handover(runner)
                handover_seconds = time.perf_counter() - started
            head = chatdb.connect(head_url)
            legacy = chatdb.connect(legacy_url)
            report.update_section(
                "chat-search", search_section(head, legacy, counts, handover_seconds)
            )
            legacy.close()
            append = append_section(head_url, head, args.append, counts["messages"])
            report.update_section("chat-append", append)
            report.update_section("chat-reindex", reindex_section(head))
            head.close()
        finally:
            drop_database(admin, head_url)


if __name__ == "__main__":
    main()
