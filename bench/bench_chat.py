"""The chat API at a million messages: search latency, bulk append, reindex throughput.

Builds the legacy-shaped dataset (chatdb/testing/dataset.py), clones it, migrates the
clone to head, and measures from Python through ``chatdb``'s API:

- user-scoped search (users with about twenty threads) on head and, for the
  same queries, on the legacy schema;
- unscoped search for a rare and for a common term;
- ``add_messages`` of 100,000 messages against raw psycopg2 ``execute_values``
  of the same rows (the search trigger fires in both);
- ``reindex_search`` throughput.

Figures go into docs/benchmarks.md.

    python -m bench.bench_chat [--server URL] [--messages N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import time
import uuid
from collections.abc import Callable

import peewee as pw
import psycopg2
from psycopg2.extras import execute_values

import chatdb
from bench import report
from bench.server import add_server_option, copy_database, drop_database, scratch_database, server
from chatdb.migrate.executor import Runner
from chatdb.schema.models import bind
from chatdb.testing import dataset

APPEND_ROWS = 100_000
APPEND_THREADS = 1_000


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


def typical_users(database: pw.Database, count: int = 100) -> list[uuid.UUID]:
    rows = database.execute_sql(
        "SELECT user_id FROM threads GROUP BY user_id HAVING count(*) BETWEEN 18 AND 22"
        " ORDER BY user_id LIMIT %s",
        (count,),
    ).fetchall()
    return [uuid.UUID(str(row[0])) for row in rows]


def scoped_search(users: list[uuid.UUID], query: str, runs: int) -> list[float]:
    turn = iter(range(10**9))
    return timings(
        lambda: chatdb.search_messages(query, user_id=users[next(turn) % len(users)]), runs
    )


def search_section(head: pw.Database, legacy: pw.Database, counts: dict[str, int]) -> str:
    bind(head)
    users = typical_users(head)
    common, rare = dataset.common_word(), dataset.rare_word()
    phrase = f"{dataset.vocabulary()[300]} {dataset.vocabulary()[301]}"
    queries = {"common term": common, "two mid-frequency words": phrase, "rare term": rare}
    print("plan (head, user-scoped, common term):", flush=True)
    plan = head.execute_sql(
        "EXPLAIN SELECT m.message_id FROM messages m JOIN threads t ON t.thread_id = m.thread_id"
        " WHERE m.search_vector @@ websearch_to_tsquery('english', %s) AND t.user_id = %s",
        (common, users[0]),
    ).fetchall()
    print("\n".join(row[0] for row in plan), flush=True)
    rows = []
    for label, query in queries.items():
        bind(head)
        new = summary(scoped_search(users, query, runs=300))
        bind(legacy)
        old = summary(scoped_search(users, query, runs=15))
        print(f"user-scoped {label!r}: head {new}, legacy {old}", flush=True)
        rows.append(
            f"| user-scoped, {label} (`{query}`) | {new[0]:.2f} ms | {new[1]:.2f} ms |"
            f" {old[0]:.1f} ms | {old[1]:.1f} ms |"
        )
    bind(head)
    for label, query, runs in (("rare term", rare, 100), ("common term", common, 10)):
        matches = head.execute_sql(
            "SELECT count(*) FROM messages"
            " WHERE search_vector @@ websearch_to_tsquery('english', %s)",
            (query,),
        ).fetchone()[0]
        new = summary(timings(lambda q=query: chatdb.search_messages(q), runs, warmup=1))
        print(f"unscoped {label!r} ({matches} matches): {new}", flush=True)
        rows.append(
            f"| unscoped, {label} (`{query}`, {matches:,} matches) | {new[0]:.2f} ms |"
            f" {new[1]:.2f} ms | | |"
        )
    return "\n".join(
        [
            "## Search (`chatdb.search_messages`)",
            "",
            f"{counts['messages']:,} messages in {counts['threads']:,} threads "
            f"(chatdb/testing/dataset.py: Zipf vocabulary of {len(dataset.vocabulary()):,} words); "
            f"{report.machine()}. Measured from Python through the API, 20 hits per search "
            f"with snippets; user-scoped searches rotate over {len(users)} users with 18-22 "
            "threads. Legacy: the same call on the same data in the legacy schema "
            "(no index on `messages.thread_id` or `threads.user_id`).",
            "",
            "| search | head median | head p95 | legacy median | legacy p95 |",
            "| --- | --- | --- | --- | --- |",
            *rows,
            "",
            "Goal: user-scoped median under 5 ms, p95 under 20 ms.",
            "An unscoped search for a word found in half of all messages has to rank every"
            " match (`ts_rank_cd` reads each vector), so its time grows with the data; scoped"
            " searches only read their scope.",
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
                    "content": dataset.sentence_text(rng, 18 if user_turn else 60),
                },
            }
        )
    return rows


def raw_insert(url: str, rows: list[tuple]) -> float:
    """Seconds for plain execute_values of prepared rows, committed."""
    conn = psycopg2.connect(url)
    try:
        started = time.perf_counter()
        with conn, conn.cursor() as cursor:
            execute_values(
                cursor,
                "INSERT INTO messages (message_id, creation_date, content, thread_id, entity,"
                " is_complete) VALUES %s",
                rows,
                template="(%s, %s, %s, %s, %s::entity, %s)",
                page_size=1000,
            )
        return time.perf_counter() - started
    finally:
        conn.close()


def append_section(url: str, head: pw.Database, count: int) -> str:
    bind(head)
    rng = random.Random(6)
    raw_times, api_times = [], []
    for _round in range(2):
        raw_threads = [chatdb.create_thread(uuid.uuid4()).thread_id for _ in range(APPEND_THREADS)]
        api_threads = [chatdb.create_thread(uuid.uuid4()).thread_id for _ in range(APPEND_THREADS)]
        api_rows = append_rows(rng, api_threads, count)
        now = dt.datetime.now(dt.UTC)
        raw_rows = [
            (
                str(uuid.uuid4()),
                now + dt.timedelta(microseconds=n),
                json.dumps(row["content"]),
                str(raw_threads[n % APPEND_THREADS]),
                row["entity"],
                True,
            )
            for n, row in enumerate(api_rows)
        ]
        raw_times.append(raw_insert(url, raw_rows))
        started = time.perf_counter()
        chatdb.add_messages(api_rows)
        api_times.append(time.perf_counter() - started)
        print(f"append round: raw {raw_times[-1]:.1f}s, api {api_times[-1]:.1f}s", flush=True)
    raw, api = statistics.median(raw_times), statistics.median(api_times)
    return "\n".join(
        [
            "## Bulk append (`chatdb.add_messages`)",
            "",
            f"{count:,} user and assistant messages (Zipf text) into {APPEND_THREADS:,}"
            " threads of the million-message database, one call, one transaction; the search"
            " trigger and every index are maintained in both cases. Raw: psycopg2"
            " `execute_values` (1,000 rows per statement) of the same rows, already as tuples"
            " with ids, timestamps and JSON text. The API starts from dicts and also checks"
            " every content, generates ids and timestamps, and moves the threads' `update_date`."
            " Median of two rounds, alternating.",
            "",
            "| | seconds | messages/s |",
            "| --- | --- | --- |",
            f"| raw `execute_values` | {raw:.1f} | {count / raw:,.0f} |",
            f"| `chatdb.add_messages` | {api:.1f} | {count / api:,.0f} |",
            "",
            f"Throughput ratio API / raw: **{raw / api:.2f}** (goal ≥ 0.7).",
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
        dataset.build(legacy_url, messages=args.messages, threads=args.threads)
        counts = dataset.row_counts(legacy_url)
        print(f"built in {time.perf_counter() - started:.0f}s: {counts}", flush=True)
        head_url = copy_database(admin, legacy_url)
        try:
            with Runner(head_url) as runner:
                runner.migrate()
            head = chatdb.connect(head_url)
            head.execute_sql("ANALYZE")
            legacy = chatdb.connect(legacy_url)
            report.update_section("chat-search", search_section(head, legacy, counts))
            legacy.close()
            report.update_section("chat-append", append_section(head_url, head, args.append))
            report.update_section("chat-reindex", reindex_section(head))
            head.close()
        finally:
            drop_database(admin, head_url)


if __name__ == "__main__":
    main()
