"""The sync and the async data API side by side: append and search throughput, 8 clients.

Both APIs run the same workload on the same database, each with one
``Database`` (its own pool of 8 connections) shared by 8 concurrent clients:
threads for ``chatdb``, asyncio tasks for ``chatdb.aio``. Each client
appends to its own thread (one message per call, as a chat turn, and in
batches of 100, as an import) and searches its own user's threads. The
database is seeded first with English text (``bench/vocabulary.py``). The
section goes into docs/benchmarks.md.

    python -m bench.bench_api [--server URL] [--seed 200000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

import chatdb
import chatdb.aio
from bench import report
from bench.server import add_server_option, scratch_database, server
from bench.vocabulary import english
from chatdb.migrate.executor import Runner

CLIENTS = 8
TURNS = 200  # single-message appends per client
BATCHES = 10  # batched appends per client
BATCH = 100  # messages per batch
SEARCHES = 200  # searches per client
QUERIES = ("neuron", "cortical neurons", "good work", "hippocampus or thalamus")


def message(rng: random.Random, thread_id: uuid.UUID) -> chatdb.NewMessage:
    words = english().draw(rng, rng.randint(8, 60))
    entity = rng.choice(("USER", "AI_MESSAGE"))
    return {"thread_id": thread_id, "entity": entity, "content": {"content": " ".join(words)}}


def seed(db: chatdb.Database, users: list[uuid.UUID], count: int) -> None:
    """``count`` messages in 20 threads of each user."""
    rng = random.Random(22)
    threads = [db.create_thread(user).thread_id for user in users for _ in range(20)]
    for start in range(0, count, 10_000):
        size = min(10_000, count - start)
        db.add_messages([message(rng, rng.choice(threads)) for _ in range(size)])


class Workload:
    """What each client does, as calls of either API (sync: functions; async: coroutines)."""

    def __init__(self, users: list[uuid.UUID], threads: list[uuid.UUID]):
        self.users, self.threads = users, threads

    def turns(self, client: int) -> list[chatdb.NewMessage]:
        rng = random.Random(client)
        return [message(rng, self.threads[client]) for _ in range(TURNS)]

    def batches(self, client: int) -> list[list[chatdb.NewMessage]]:
        rng = random.Random(1000 + client)
        return [[message(rng, self.threads[client]) for _ in range(BATCH)] for _ in range(BATCHES)]

    def searches(self, client: int) -> list[str]:
        return [QUERIES[n % len(QUERIES)] for n in range(SEARCHES)]


def sync_rates(db: chatdb.Database, work: Workload) -> dict[str, float]:
    """Operations per second of each kind, 8 threads sharing ``db``."""

    def turns(client: int) -> None:
        for new in work.turns(client):
            db.add_message(new["thread_id"], new["entity"], new["content"])

    def batches(client: int) -> None:
        for batch in work.batches(client):
            db.add_messages(batch)

    def searches(client: int) -> None:
        for query in work.searches(client):
            db.search_messages(query, user_id=work.users[client])

    rates = {}
    for name, job, count in (
        ("appends", turns, TURNS),
        ("batched", batches, BATCHES * BATCH),
        ("searches", searches, SEARCHES),
    ):
        started = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(job, range(CLIENTS)))
        rates[name] = CLIENTS * count / (time.perf_counter() - started)
    return rates


async def async_rates(db: chatdb.aio.Database, work: Workload) -> dict[str, float]:
    """Operations per second of each kind, 8 tasks sharing ``db``."""

    async def turns(client: int) -> None:
        for new in work.turns(client):
            await db.add_message(new["thread_id"], new["entity"], new["content"])

    async def batches(client: int) -> None:
        for batch in work.batches(client):
            await db.add_messages(batch)

    async def searches(client: int) -> None:
        for query in work.searches(client):
            await db.search_messages(query, user_id=work.users[client])

    jobs: tuple[tuple[str, Callable[[int], Awaitable[None]], int], ...] = (
        ("appends", turns, TURNS),
        ("batched", batches, BATCHES * BATCH),
        ("searches", searches, SEARCHES),
    )
    rates = {}
    for name, job, count in jobs:
        started = time.perf_counter()
        await asyncio.gather(*(job(client) for client in range(CLIENTS)))
        rates[name] = CLIENTS * count / (time.perf_counter() - started)
    return rates


async def measure_async(url: str, work: Workload) -> dict[str, float]:
    db = await chatdb.aio.connect(url, max_connections=CLIENTS)
    try:
        return await async_rates(db, work)
    finally:
        await db.close()


def section(
    rounds: list[tuple[dict[str, float], dict[str, float]]], seeded: int, load: float
) -> str:
    rows = []
    labels = {
        "appends": "`add_message`, one message per call",
        "batched": f"`add_messages`, {BATCH} per call (messages/s)",
        "searches": "`search_messages`, scoped to a user",
    }
    for kind, label in labels.items():
        sync = [r[0][kind] for r in rounds]
        aio = [r[1][kind] for r in rounds]
        ratio = statistics.median(aio) / statistics.median(sync)
        rows.append(f"| {label} | {_spread(sync)} | {_spread(aio)} | {ratio:.2f}x |")
    return "\n".join(
        [
            "## Sync and async data API (`chatdb` and `chatdb.aio`), 8 concurrent clients",
            "",
            f"`python -m bench.bench_api --seed {seeded} --rounds {len(rounds)}` "
            f"(needs `pip install -e '.[bench]'`) on {report.machine()}, a throwaway embedded "
            f"server on the same machine, load average {load:.1f} before the run (the machine "
            f"is shared, so rounds vary). {CLIENTS} clients share one `Database` of each API "
            f"(a pool of {CLIENTS} connections): threads for `chatdb`, asyncio tasks for "
            f"`chatdb.aio`. The database holds {seeded:,} messages of English text in 20 threads "
            f"of each of {CLIENTS} users (so a user's search reads {seeded // CLIENTS:,} "
            f"messages); each client appends {TURNS} single messages and {BATCHES} batches of "
            f"{BATCH} to a thread of its own and runs {SEARCHES} searches scoped to its own user "
            f"(queries rotating over {', '.join(f'`{q}`' for q in QUERIES)}). Operations per "
            f"second of all clients together: median of {len(rounds)} rounds (the two APIs "
            "alternate), and the slowest and fastest round.",
            "",
            "| operation | `chatdb` (sync): median (range) | `chatdb.aio`: median (range) "
            "| async / sync (medians) |",
            "| --- | ---: | ---: | ---: |",
            *rows,
        ]
    )


def _spread(rates: list[float]) -> str:
    return f"{statistics.median(rates):,.0f} ({min(rates):,.0f}-{max(rates):,.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_server_option(parser)
    parser.add_argument("--seed", type=int, default=200_000, help="messages in the database")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with server(args.server) as admin, scratch_database(admin) as url:
        with Runner(url) as runner:
            runner.migrate()
        users = [uuid.UUID(int=n + 1) for n in range(CLIENTS)]
        db = chatdb.connect(url, max_connections=CLIENTS)
        try:
            started = time.perf_counter()
            seed(db, users, args.seed)
            print(f"seeded {args.seed:,} messages in {time.perf_counter() - started:.0f}s")
            threads = [db.create_thread(user, "appends").thread_id for user in users]
            work = Workload(users, threads)
            rounds = []
            for number in range(args.rounds):
                sync = sync_rates(db, work)
                aio = asyncio.run(measure_async(url, work))
                rounds.append((sync, aio))
                print(f"round {number + 1}: sync {sync}, async {aio}", flush=True)
        finally:
            db.close_all()
    markdown = section(rounds, args.seed, load)
    report.update_section("api-sync-async", markdown)
    print(markdown)


if __name__ == "__main__":
    main()
