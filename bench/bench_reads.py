"""Snippets, listing and bulk append through the API, side by side with plain SQL, one run.

Builds the legacy-shaped dataset (English text, bench/vocabulary.py), hands it
over to head with ``chatdb handover``, adds what the figures need (a user with
500 messages of about 83 KB, a user with 1,000 threads, a thread of 5,000
messages), then measures, each way alternating with the others round by round:

- scoped search over the long messages (top 20 and top 500) and a single
  common word over a typical user's short messages: the API with snippets,
  without (``snippets=False``), and the legacy backend's query (messages
  joined to threads, ranked, no snippet);
- listing: a user's first page of threads, a deep keyset page, a
  5,000-message thread's first page and all of it: the API's models, its
  light rows (``rows=True``) and the same statements run with psycopg2;
- bulk append against raw ``COPY`` (``bench.bench_chat.append_section``).

Sections ``reads-snippets``, ``reads-listing`` and ``chat-append`` of
docs/benchmarks.md (``-10m`` after them for ten million messages, and so on).
``--legacy NAME`` reuses a legacy database already on ``--server`` (as
``bench.bench_exact_search`` does): a copy of it is handed over and dropped
afterwards.

    python -m bench.bench_reads [--server URL] [--messages 1000000 | --legacy NAME]
        [--append 100000] [--parts snippets,listing,append]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
import uuid
from collections.abc import Callable

import psycopg2

import chatdb
from bench import report
from bench.bench_chat import append_section, typical_scopes
from bench.server import (
    add_server_option,
    drop_database,
    head_copy,
    legacy_database,
    scratch_database,
    server,
)
from bench.vocabulary import english
from chatdb.api import pages

LONG_MESSAGES = 500
LONG_WORDS = 15_000  # about 83 KB of English text
SERVICE_THREADS = 1_000
BIG_THREAD = 5_000
COMMON_WORD = "time"
LEGACY_SEARCH = (
    "SELECT m.message_id, m.creation_date, m.content, m.thread_id, m.entity, m.is_complete,"
    " ts_rank_cd(m.search_vector, q) AS rank"
    " FROM messages m JOIN threads t ON t.thread_id = m.thread_id,"
    " websearch_to_tsquery('english', %(query)s) q"
    " WHERE m.search_vector @@ q AND t.user_id = %(user)s"
    " ORDER BY rank DESC, m.creation_date DESC, m.message_id LIMIT %(limit)s"
)


def side_by_side(
    ways: dict[str, Callable[[], object]], rounds: int, calls: int
) -> dict[str, list[float]]:
    """Milliseconds per call of each way: ``rounds`` rounds of ``calls`` calls, ways alternating
    (their order rotating each round); one untimed call of each first."""
    for call in ways.values():
        call()
    times: dict[str, list[float]] = {name: [] for name in ways}
    names = list(ways)
    for turn in range(rounds):
        for name in names[turn % len(names) :] + names[: turn % len(names)]:
            for _ in range(calls):
                started = time.perf_counter()
                ways[name]()
                times[name].append((time.perf_counter() - started) * 1000)
    return times


def p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=20)[18] if len(times) > 1 else times[0]


def seed(db: chatdb.Database) -> dict[str, uuid.UUID]:
    """The long-message user, the service user and the big thread."""
    rng = random.Random(21)
    words = english()
    long_user, service_user = uuid.uuid4(), uuid.uuid4()
    long_threads = [db.create_thread(long_user).thread_id for _ in range(20)]
    for start in range(0, LONG_MESSAGES, 50):
        db.add_messages(
            [
                {
                    "thread_id": long_threads[n % len(long_threads)],
                    "entity": "AI_MESSAGE",
                    "content": {
                        "role": "assistant",
                        "content": " ".join(words.draw(rng, LONG_WORDS)),
                    },
                }
                for n in range(start, start + 50)
            ]
        )
    threads = [db.create_thread(service_user, f"t{n}").thread_id for n in range(SERVICE_THREADS)]
    big = threads[0]
    db.add_messages(
        [
            {
                "thread_id": big,
                "entity": "USER" if n % 2 == 0 else "AI_MESSAGE",
                "content": {
                    "role": "user",
                    "content": " ".join(words.draw(rng, rng.randint(8, 60))),
                },
            }
            for n in range(BIG_THREAD)
        ]
    )
    db.execute_sql("VACUUM ANALYZE")
    return {"long_user": long_user, "service_user": service_user, "big_thread": big}


def plain(url: str) -> Callable[[str, dict[str, object]], Callable[[], object]]:
    """A psycopg2 connection of its own, and calls that run one statement and fetch it all."""
    conn = psycopg2.connect(url)
    conn.autocommit = True
    cursor = conn.cursor()

    def statement(sql: str, params: dict[str, object]) -> Callable[[], object]:
        def run() -> object:
            cursor.execute(sql, params)
            return cursor.fetchall()

        return run

    return statement


def snippet_section(
    db: chatdb.Database, url: str, seeded: dict[str, uuid.UUID], command: str
) -> str:
    sql = plain(url)
    long_user = seeded["long_user"]
    size = db.execute_sql(
        "SELECT avg(length(content)) FROM messages m JOIN threads t USING (thread_id)"
        " WHERE t.user_id = %s",
        (str(long_user),),
    ).fetchone()[0]
    users = typical_scopes(db)["user_id"]
    turn = iter(range(10**9))

    def typical() -> uuid.UUID:
        return users[next(turn) % len(users)]

    cases = [
        ("~83 KB messages, top 20", "neuron", lambda: long_user, 20, 6, 5),
        ("~83 KB messages, top 20", COMMON_WORD, lambda: long_user, 20, 6, 5),
        ("~83 KB messages, top 500", COMMON_WORD, lambda: long_user, 500, 4, 2),
        ("a typical user's messages, top 20", COMMON_WORD, typical, 20, 10, 20),
        ("a typical user's messages, top 20", "neuron", typical, 20, 10, 20),
    ]
    rows = []
    for label, query, user, limit, rounds, calls in cases:

        def legacy(query: str = query, user: Callable[[], uuid.UUID] = user, limit: int = limit):
            return sql(LEGACY_SEARCH, {"query": query, "user": str(user()), "limit": limit})()

        def api(snippets: bool, query=query, user=user, limit=limit) -> object:
            return db.search_messages(query, user_id=user(), limit=limit, snippets=snippets)

        times = side_by_side(
            {
                "legacy": legacy,
                "api": lambda api=api: api(True),
                "bare": lambda api=api: api(False),
            },
            rounds,
            calls,
        )
        median = {name: statistics.median(values) for name, values in times.items()}
        print(f"snippets {label} {query!r}: {median}", flush=True)
        rows.append(
            f"| {label} | `{query}` | {median['legacy']:.1f} ms | {median['api']:.1f} ms"
            f" ({p95(times['api']):.1f}) | {median['bare']:.1f} ms |"
            f" **{median['api'] / median['legacy']:.2f}** |"
        )
    return "\n".join(
        [
            "## Search snippets (`chatdb.search_messages`)",
            "",
            f"`{command}` on {report.machine()}, load average {os.getloadavg()[0]:.1f}"
            " (machine shared with other work): the legacy database handed over to head,"
            " plus a user with"
            f" {LONG_MESSAGES} messages of {size / 1000:.0f} KB on average in 20 threads."
            " Each way alternates with the others round by round; medians (API p95 in"
            " brackets). Legacy: the legacy backend's query (messages joined to threads,"
            " `ts_rank_cd`, no snippet), with psycopg2; API: through `chatdb`, with"
            " snippets, and with `snippets=False`; typical users: 100 users with 18-22"
            " threads, rotating.",
            "",
            "| messages searched | query | legacy query | API, snippets | API, `snippets=False`"
            " | API / legacy |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
            *rows,
            "",
            "Goals: over the long messages, top 20 ≤ 1.5x the legacy query and top 500 ≤"
            " 0.5 s; a single common word over short messages ≤ 1.0x the legacy query."
            " `ts_headline` parses all the text it is given (about 8 ms for 83 KB): the"
            " search statement makes the snippets of short hits (content of at most 1,000"
            " bytes) over their whole text, as always, and a second statement those of the"
            " long ones over the 1,000 characters around the first match"
            " (`chatdb/api/snippets.py`). What the API adds to the legacy query beyond the"
            " snippets is reading each hit's content into Python (`json.loads`) and, with"
            " long hits, the second round trip.",
        ]
    )


def count_of(db: chatdb.Database) -> int:
    return int(db.execute_sql("SELECT count(*) FROM messages").fetchone()[0])


def listing_section(
    db: chatdb.Database, url: str, seeded: dict[str, uuid.UUID], command: str
) -> str:
    sql = plain(url)
    service, big = seeded["service_user"], seeded["big_thread"]
    typical = typical_scopes(db)["user_id"][0]
    deep = db.list_threads(service, limit=SERVICE_THREADS)[SERVICE_THREADS // 2].thread_id
    cases: list[tuple[str, Callable[[bool], object], tuple[str, dict[str, object]], int]] = [
        (
            "a user's threads, first page (20)",
            lambda rows: db.list_threads(typical, rows=rows),
            pages.threads_page(typical, 20, None),
            200,
        ),
        (
            f"a deep keyset page (20 after the {SERVICE_THREADS // 2}th thread, by id)",
            lambda rows: db.list_threads(service, after=deep, rows=rows),
            pages.threads_page(service, 20, deep),
            200,
        ),
        (
            f"a {BIG_THREAD:,}-message thread, first page (100)",
            lambda rows: db.list_messages(big, rows=rows),
            pages.messages_page(big, 100, None),
            100,
        ),
        (
            f"all {BIG_THREAD:,} messages of that thread",
            lambda rows: db.list_messages(big, limit=BIG_THREAD, rows=rows),
            pages.messages_page(big, BIG_THREAD, None),
            4,
        ),
    ]
    table = []
    for label, api, (statement, params), calls in cases:
        times = side_by_side(
            {
                "sql": sql(statement, params),
                "models": lambda api=api: api(False),
                "rows": lambda api=api: api(True),
            },
            rounds=10,
            calls=calls // 10 or 1,
        )
        median = {name: statistics.median(values) for name, values in times.items()}
        print(f"listing {label}: {median}", flush=True)
        table.append(
            f"| {label} | {median['sql']:.2f} ms | {median['models']:.2f} ms"
            f" ({median['models'] / median['sql']:.2f}x) | {median['rows']:.2f} ms"
            f" (**{median['rows'] / median['sql']:.2f}x**) |"
        )
    return "\n".join(
        [
            "## Listing threads and messages",
            "",
            f"`{command}` on {report.machine()},"
            f" load average {os.getloadavg()[0]:.1f} (machine shared with other work), the"
            " same database as the snippets above. Plain SQL: the API's own statements"
            " (`chatdb/api/pages.py`) run with psycopg2 on a connection of their own,"
            " `fetchall()`; models: `list_threads` / `list_messages` as they have always"
            " returned (`Thread`, `Message`, content parsed); rows: the same with"
            " `rows=True` (`ThreadRow`, `MessageRow`, content parsed when read). The three"
            " alternate round by round; medians.",
            "",
            "| page | plain SQL | API, models | API, `rows=True` |",
            "| --- | ---: | ---: | ---: |",
            *table,
            "",
            "Goal: ≤ 1.2x plain SQL. A page is one statement (a keyset given by id is read"
            " in a subquery, not a round trip of its own); a call borrows a pooled"
            " connection given back moments ago without asking the server whether it is"
            " still there (Peewee's pool sent `SELECT 1` first, a round trip as long as the"
            " page's own: the 2x of before) and without the helper thread that opening one"
            " uses; models are built as Peewee builds a select's rows. What the models"
            " still cost over plain SQL on a long page is mostly"
            " `json.loads` of every message's content, which `rows=True` defers to the"
            " reader.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_server_option(parser)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--legacy", help="an existing legacy database on --server, reused")
    parser.add_argument("--append", type=int, default=100_000, help="messages per append")
    parser.add_argument(
        "--parts", default="snippets,listing,append", help="which sections to measure"
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    with server(args.server) as admin, scratch_database(admin) as scratch:
        url = head_copy(admin, legacy_database(admin, scratch, args.legacy, args.messages))
        source = (
            f"--server URL --legacy {args.legacy}" if args.legacy else f"--messages {args.messages}"
        )
        db = chatdb.connect(url)
        try:
            measure(db, url, parts, args, f"python -m bench.bench_reads {source} --parts")
        finally:
            db.close_all()
            drop_database(admin, url)


def measure(
    db: chatdb.Database, url: str, parts: set[str], args: argparse.Namespace, command: str
) -> None:
    """The chosen sections; beyond a million messages their names and titles say the scale."""
    messages = count_of(db)
    millions = round(messages / 1_000_000)
    suffix = "" if millions <= 1 else f"-{millions}m"

    def scaled(text: str) -> str:
        title, rest = text.split("\n", 1)
        return f"{title} at {messages:,} messages\n{rest}" if suffix else text

    seeded = seed(db)
    if "snippets" in parts:
        section = snippet_section(db, url, seeded, f"{command} snippets")
        report.update_section(f"reads-snippets{suffix}", scaled(section))
    if "listing" in parts:
        section = listing_section(db, url, seeded, f"{command} listing")
        report.update_section(f"reads-listing{suffix}", scaled(section))
    if "append" in parts:
        append = append_section(url, db, args.append, count_of(db), f"{command} append")
        report.update_section(f"chat-append{suffix}", scaled(append))


if __name__ == "__main__":
    main()
