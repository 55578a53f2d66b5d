"""How long a writer waits while ``operations.fill_nulls`` backfills a new column.

Builds a database at head with ``--messages`` messages (``chatdb.testing.dataset``),
adds a nullable column to ``messages``, and fills it twice while another
process updates a random existing message every 10 ms (the write that waits
for a backfill's row locks): once as ``chatdb create --backfill`` runs it,
outside a transaction, one statement per range of pages; once as a single
``UPDATE`` in one transaction (plain ``pw_migrate``, or a hand-written
backfill). It reports the wall time and the writer's longest and 99th
percentile wait during each, and writes them into docs/benchmarks.md.

    python -m bench.bench_fill_nulls [--messages N] [--server URL]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
from multiprocessing.connection import Connection

import psycopg2
from peewee_migrate import Migrator

from bench import report
from bench.server import add_server_option, scratch_database, server
from chatdb import operations
from chatdb.db.connect import make_database
from chatdb.migrate import location
from chatdb.migrate import operations as migrate_operations
from chatdb.migrate.executor import Runner
from chatdb.testing import dataset

SECTION = "fill_nulls"
WRITER_PAUSE = 0.01


def _writer(url: str, stop: mp.Event, out: Connection) -> None:
    """Update random existing messages until told to stop; send back (start, duration) pairs."""
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("SELECT message_id FROM messages ORDER BY random() LIMIT 5000")
        ids = [row[0] for row in cursor.fetchall()]
        samples, index = [], 0
        while not stop.is_set():
            started = time.time()
            cursor.execute(
                "UPDATE messages SET is_complete = NOT is_complete WHERE message_id = %s",
                (ids[index % len(ids)],),
            )
            samples.append((started, time.time() - started))
            index += 1
            time.sleep(WRITER_PAUSE)
    conn.close()
    out.send(samples)


def _fill(url: str, in_transaction: bool) -> tuple[float, list[float]]:
    """Fill a new column of messages under write load: wall time, the writer's waits."""
    context = mp.get_context("spawn")
    stop = context.Event()
    receive, send = context.Pipe(duplex=False)
    database = make_database(url)
    with database.connection_context():
        database.execute_sql("ALTER TABLE messages DROP COLUMN IF EXISTS mark")
        database.execute_sql("ALTER TABLE messages ADD COLUMN mark integer")
        migrator = Migrator(database)
        operations.fill_nulls(migrator, "messages", "mark", "1")
        (fill,) = migrator.__ops__
        process = context.Process(target=_writer, args=(url, stop, send))
        process.start()
        time.sleep(2.0)
        started = time.time()
        if in_transaction:
            with database.atomic():
                fill()
        else:
            fill()
        ended = time.time()
        time.sleep(1.0)
        stop.set()
        samples = receive.recv()
        process.join()
    waits = sorted(d for start, d in samples if start <= ended and start + d >= started)
    return ended - started, waits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    add_server_option(parser)
    args = parser.parse_args()
    with server(args.server) as admin, scratch_database(admin) as url:
        built = time.time()
        dataset.build(url, messages=args.messages, seed=3)
        with Runner(url, location.migrations_dir()) as runner:
            runner.migrate()
        database = make_database(url)
        with database.connection_context():
            pages, version = database.execute_sql(
                "SELECT pg_relation_size('messages') / current_setting('block_size')::int, "
                "current_setting('server_version')"
            ).fetchone()
        print(f"built {args.messages:,} messages ({pages:,} pages) in {time.time() - built:.0f} s")
        rows = []
        for how, in_transaction in (
            (f"`fill_nulls`, {migrate_operations.FILL_BATCH_PAGES}-page batches", False),
            ("one `UPDATE` in one transaction", True),
        ):
            seconds, waits = _fill(url, in_transaction)
            p99 = waits[int(len(waits) * 0.99)] if waits else 0.0
            longest = waits[-1] if waits else 0.0
            rows.append(f"| {how} | {seconds:.1f} s | {longest:.3f} s | {p99:.3f} s |")
            print(rows[-1])
    load = os.getloadavg()[0]
    report.update_section(
        SECTION,
        f"## Backfilling a new column (`operations.fill_nulls`, `chatdb create --backfill`)\n\n"
        f"`python -m bench.bench_fill_nulls --messages {args.messages}` on {report.machine()}, "
        f"PostgreSQL {version.split()[0]}, a machine shared with other work (load average "
        f"{load:.1f}). `messages` holds "
        f"{args.messages:,} rows in {pages:,} pages; a new nullable column is filled with a "
        "constant while another process updates a random existing message every 10 ms; a "
        "wait is that update's duration.\n\n"
        "| backfill | wall time | writer's longest wait | writer's 99th percentile |\n"
        "| --- | ---: | ---: | ---: |\n" + "\n".join(rows) + "\n",
    )


if __name__ == "__main__":
    main()
