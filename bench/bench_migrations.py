"""How the target-schema migrations behave on a large legacy database under write traffic.

Builds a legacy-shaped database (``bench.dataset``, default a million
messages in 100,000 threads) once, then, on two copies of it, applies the
migrations after the baseline while another process keeps writing (each
transaction inserts a message with a tool call and a token row, and deletes
the tool call and token row of the previous one):

- with chatdb's runner (``atomic = False`` migrations run step by step:
  concurrent index builds, ``NOT VALID`` foreign keys validated separately);
- with plain peewee-migrate (``Router.run``, what ``pw_migrate migrate``
  calls), which wraps each migration in one transaction.

It reports the wall time of each migration, the writer's longest stall (its
slowest transaction) during each, and the time to delete one thread with its
messages and their children: on the legacy schema as the old ORM did it
(children first, explicitly) and at head (one ``DELETE``, cascading). The
figures go into docs/benchmarks.md.

    python -m bench.bench_migrations [--messages N] [--server URL]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection

import psycopg2
from peewee_migrate import Router

from bench import report
from bench.server import add_server_option, copy_database, drop_database, scratch_database, server
from chatdb.db.connect import open_database
from chatdb.migrate import loader, location
from chatdb.migrate.executor import Runner
from chatdb.testing import dataset

MIGRATIONS = location.migrations_dir()
NEW = loader.names(MIGRATIONS)[1:]
WRITER_PAUSE = 0.005
SECTION = "migrations"

LEGACY_DELETE = (
    *(
        f"DELETE FROM {table} WHERE message_id IN "
        "(SELECT message_id FROM messages WHERE thread_id = %(thread)s)"
        for table in ("tool_calls", "tool_selection", "token_consumption", "complexity_estimation")
    ),
    "DELETE FROM messages WHERE thread_id = %(thread)s",
    "DELETE FROM threads WHERE thread_id = %(thread)s",
)
HEAD_DELETE = ("DELETE FROM threads WHERE thread_id = %(thread)s",)


# -- the concurrent writer ------------------------------------------------------


def _writer(url: str, stop: mp.Event, out: Connection) -> None:
    """Write until told to stop; send back (wall-clock start, duration) of every transaction."""
    conn = psycopg2.connect(url)
    with conn.cursor() as cursor:
        cursor.execute("SELECT thread_id FROM threads LIMIT 100")
        threads = [row[0] for row in cursor.fetchall()]
    conn.commit()
    samples: list[tuple[float, float]] = []
    previous: tuple[str, str] | None = None
    index = 0
    while not stop.is_set():
        message, call, token = str(uuid.uuid4()), uuid.uuid4().hex, str(uuid.uuid4())
        started, wall = time.perf_counter(), time.time()
        with conn.cursor() as cursor:
            cursor.execute(
                "INSERT INTO messages (message_id, creation_date, content, thread_id, entity, "
                "is_complete) VALUES (%s, now(), %s, %s, 'USER', true)",
                (message, '{"role": "user", "content": "writer probe neuron"}', threads[index]),
            )
            cursor.execute(
                "INSERT INTO tool_calls (tool_call_id, name, arguments, message_id) "
                "VALUES (%s, 'web-search', '{}', %s)",
                (call, message),
            )
            cursor.execute(
                "INSERT INTO token_consumption (id, message_id, type, task, count, model) "
                "VALUES (%s, %s, 'COMPLETION', 'CHAT_COMPLETION', 1, 'm')",
                (token, message),
            )
            if previous:
                cursor.execute("DELETE FROM tool_calls WHERE tool_call_id = %s", (previous[0],))
                cursor.execute("DELETE FROM token_consumption WHERE id = %s", (previous[1],))
        conn.commit()
        samples.append((wall, time.perf_counter() - started))
        previous = (call, token)
        index = (index + 1) % len(threads)
        time.sleep(WRITER_PAUSE)
    conn.close()
    out.send(samples)


@dataclass
class Run:
    """One migration pass: wall time per migration and the writer's samples."""

    windows: dict[str, tuple[float, float]]
    samples: list[tuple[float, float]]

    def seconds(self, name: str) -> float:
        start, end = self.windows[name]
        return end - start

    def stall(self, name: str | None = None) -> float:
        """The writer's slowest transaction during migration ``name`` (or any of them).

        A transaction counts for the migration it overlapped most: one blocked by a
        migration's commit ends a moment into the next one.
        """
        durations = [
            duration
            for start, duration in self.samples
            if (during := self._during(start, start + duration)) and name in (None, during)
        ]
        return max(durations, default=0.0)

    def _during(self, start: float, end: float) -> str | None:
        overlaps = {
            name: min(end, window_end) - max(start, window_start)
            for name, (window_start, window_end) in self.windows.items()
        }
        name = max(overlaps, key=overlaps.__getitem__)
        return name if overlaps[name] > 0 else None


def _with_writer(url: str, apply: Callable[[dict[str, tuple[float, float]]], None]) -> Run:
    """Run ``apply(windows)`` while a writer process hammers the database."""
    context = mp.get_context("spawn")
    stop = context.Event()
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_writer, args=(url, stop, send))
    process.start()
    time.sleep(2.0)  # let the writer settle before the first migration
    windows: dict[str, tuple[float, float]] = {}
    try:
        apply(windows)
        time.sleep(1.0)
    finally:
        stop.set()
        samples = receive.recv()
        process.join()
    return Run(windows, samples)


def _chatdb(url: str) -> Run:
    def apply(windows: dict[str, tuple[float, float]]) -> None:
        with Runner(url, MIGRATIONS) as runner:
            for name in NEW:
                started = time.time()
                runner.migrate(name)
                windows[name] = (started, time.time())

    return _with_writer(url, apply)


def _pw_migrate(url: str) -> Run:
    def apply(windows: dict[str, tuple[float, float]]) -> None:
        database = open_database(url)
        try:
            for name in NEW:
                started = time.time()
                Router(database, migrate_dir=MIGRATIONS).run(name)
                windows[name] = (started, time.time())
        finally:
            database.close()

    return _with_writer(url, apply)


# -- deleting a thread ------------------------------------------------------------


def _threads_to_delete(url: str, count: int) -> list[str]:
    """Threads holding about the median number of messages (ten), in a stable order."""
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT thread_id FROM messages GROUP BY thread_id "
                "HAVING count(*) BETWEEN 9 AND 11 ORDER BY thread_id LIMIT %s",
                (count,),
            )
            return [row[0] for row in cursor.fetchall()]
    finally:
        conn.close()


def _delete_times(url: str, threads: list[str], statements: tuple[str, ...]) -> list[float]:
    """Seconds to delete each thread (one transaction each); checks nothing is left."""
    conn = psycopg2.connect(url)
    times = []
    try:
        for thread in threads:
            started = time.perf_counter()
            with conn.cursor() as cursor:
                for sql in statements:
                    cursor.execute(sql, {"thread": thread})
            conn.commit()
            times.append(time.perf_counter() - started)
            with conn.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM messages WHERE thread_id = %s", (thread,))
                assert cursor.fetchone()[0] == 0, thread
            conn.rollback()
    finally:
        conn.close()
    return times


# -- the report ---------------------------------------------------------------------


def _markdown(
    args: argparse.Namespace,
    counts: dict[str, int],
    built: float,
    version: str,
    runs: dict[str, Run],
    legacy: list[float],
    head: list[float],
) -> str:
    chatdb, plain = runs["chatdb"], runs["pw_migrate"]
    lines = [
        "## Target-schema migrations on a large legacy database",
        "",
        f"`python -m bench.bench_migrations --messages {args.messages}` on {report.machine()}, "
        f"PostgreSQL {version}. The legacy database ({bench_counts(counts)}) was built "
        f"with `COPY` in {built:.0f} s. A second process writes throughout (each transaction "
        "inserts a message, a tool call and a token row and deletes the previous tool call "
        "and token row; about "
        f"{len(chatdb.samples) / max(1e-9, _span(chatdb)):.0f} transactions/s); its longest "
        "stall is its slowest transaction overlapping the migration.",
        "",
        "| migration | wall time, chatdb runner | wall time, plain pw_migrate "
        "| writer's longest stall, chatdb runner | writer's longest stall, plain pw_migrate |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name in NEW:
        lines.append(
            f"| `{name}` | {chatdb.seconds(name):.2f} s | {plain.seconds(name):.2f} s "
            f"| {chatdb.stall(name):.3f} s | {plain.stall(name):.3f} s |"
        )
    lines += [
        f"| **all** | {sum(map(chatdb.seconds, NEW)):.2f} s | {sum(map(plain.seconds, NEW)):.2f} s "
        f"| **{chatdb.stall():.3f} s** | **{plain.stall():.3f} s** |",
        "",
        f"Goal: the writer never stalls for a second with chatdb's runner: "
        f"{'met' if chatdb.stall() < 1 else 'NOT met'} ({chatdb.stall():.3f} s). Plain "
        "pw_migrate holds each migration's locks until its transaction commits, so writers "
        "wait for whole index builds and foreign key validations.",
        "",
        f"Deleting one thread of about ten messages with all their children (median of "
        f"{len(legacy)} threads, same threads on both):",
        "",
        "| schema | how | median time |",
        "| --- | --- | ---: |",
        f"| legacy (baseline) | children first, explicitly, as the old ORM did "
        f"({len(LEGACY_DELETE)} statements) | {statistics.median(legacy) * 1000:.1f} ms |",
        f"| head | one `DELETE FROM threads`, cascading through indexed foreign keys "
        f"| {statistics.median(head) * 1000:.1f} ms |",
        "",
        f"Head is **{statistics.median(legacy) / statistics.median(head):.0f} times** faster: "
        "without an index on the foreign key columns every child lookup, and every "
        "foreign-key check of a deleted message, scans a whole child table.",
    ]
    return "\n".join(lines)


def _span(run: Run) -> float:
    return run.samples[-1][0] - run.samples[0][0] if len(run.samples) > 1 else 1.0


def bench_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{count:,} {table}" for table, count in counts.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--deletes", type=int, default=5, help="threads deleted per schema")
    parser.add_argument("--no-report", action="store_true", help="print, do not write the doc")
    add_server_option(parser)
    args = parser.parse_args()

    with server(args.server) as admin, scratch_database(admin) as template:
        started = time.perf_counter()
        dataset.build(template, args.messages, args.threads, args.seed)
        built = time.perf_counter() - started
        counts = dataset.row_counts(template)
        print(f"built in {built:.0f} s: {counts}", flush=True)
        threads = _threads_to_delete(template, args.deletes)
        runs: dict[str, Run] = {}
        for mode, migrate in (("pw_migrate", _pw_migrate), ("chatdb", _chatdb)):
            url = copy_database(admin, template)
            try:
                if mode == "pw_migrate":
                    legacy = _delete_times(url, threads, LEGACY_DELETE)
                    print(f"legacy deletes: {legacy}", flush=True)
                runs[mode] = migrate(url)
                print(f"{mode}: {runs[mode].windows}, stall {runs[mode].stall():.3f}", flush=True)
                if mode == "chatdb":
                    head = _delete_times(url, threads, HEAD_DELETE)
                    print(f"head deletes: {head}", flush=True)
                    conn = psycopg2.connect(url)
                    version = conn.server_version
                    conn.close()
            finally:
                drop_database(admin, url)
    text = _markdown(
        args, counts, built, f"{version // 10000}.{version % 10000}", runs, legacy, head
    )
    print(text)
    if not args.no_report:
        report.update_section(SECTION, text)


if __name__ == "__main__":
    main()
