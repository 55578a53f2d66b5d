"""Online type changes and backfills on a large database under write traffic.

Builds a legacy-shaped database (``chatdb.testing.dataset``, default a
million messages), migrates it to head, then, while another process keeps
writing (the writer of :mod:`bench.bench_migrations`: each transaction
inserts a message, a tool call and a token row and deletes the previous tool
call and token row):

- applies a migration ``chatdb create`` generated for a model type change
  (``token_consumption.count``: integer -> bigint, every token row), an
  online change: expand, batched backfill, swap;
- applies a hand-written data move (``messages.words`` added and backfilled
  with ``operations.backfill``, every message), first in a process that is
  killed with SIGKILL part way through the backfill, then again to the end.

It reports each one's wall time and the writer's longest stall (its slowest
transaction overlapping the migration), and for the killed backfill how many
rows the first process had filled, how many the second filled (the rest),
and whether every row ends right. The figures go into docs/benchmarks.md.

    python -m bench.bench_online_changes [--messages N] [--server URL]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg2

from bench import report
from bench.bench_migrations import (
    MIGRATIONS,
    MODELS_SOURCE,
    WRITER_NAME,
    Run,
    _with_writer,
    bench_counts,
)
from bench.server import add_server_option, scratch_database, server
from chatdb.migrate import write_snapshots
from chatdb.migrate.create import create
from chatdb.migrate.executor import Runner
from chatdb.testing import dataset

SECTION = "online-changes"
GOAL = 0.100  # seconds: the longest a writer may wait
TYPE_CHANGE = ("    count = pw.IntegerField()\n", "    count = pw.BigIntegerField()\n")
WORDS = "length(content)"
DATA_MOVE = f'''"""Count each message's characters into a new column (a data move in batches)."""

import peewee as pw
from peewee_migrate import Migrator

from chatdb import operations

atomic = False


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    operations.add_column(migrator, "messages", "words", "integer")
    operations.backfill(migrator, "messages", "words", "{WORDS}")


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    operations.drop_column(migrator, "messages", "words")
'''
_DONE = re.compile(r"backfill messages\.words: ([\d,]+) row\(s\) in ")


EVENTS: list[tuple[float, str]] = []  # (wall clock, what happened), to place the stalls
IDLE_SECONDS = 30.0
WATCH_EVERY = 0.005  # seconds between looks at what the server's processes wait on
ACTIVITY = (  # every server process not idle, with what it waits on (its own loop aside)
    "SELECT CASE WHEN application_name = %s THEN 'writer' WHEN backend_type = 'client backend'"
    " THEN 'migration' ELSE backend_type END, coalesce(wait_event_type || ':' || wait_event,"
    " CASE WHEN state = 'active' THEN 'running' ELSE state END) FROM pg_stat_activity"
    " WHERE pid <> pg_backend_pid() AND state IS DISTINCT FROM 'idle'"
    " AND wait_event_type IS DISTINCT FROM 'Activity'"
)


class Watch:
    """What every busy server process waits on, looked at every ``WATCH_EVERY`` seconds.

    A stall's cause is then read off the looks taken during it: the writer
    on ``IO:WalSync`` (its commit) while the checkpointer is on
    ``IO:DataFileSync`` is the disk; on ``Lock:...``, a lock; ``running``,
    its own statement's work; on ``Client:ClientRead``, the server waits for
    the writer's own process, which is not getting the CPU.
    """

    def __init__(self, url: str):
        self.looks: list[tuple[float, list[tuple[str, str]]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self._thread.start()

    def _run(self, url: str) -> None:
        conn = psycopg2.connect(url)
        conn.autocommit = True
        with conn.cursor() as cursor:
            while not self._stop.is_set():
                cursor.execute(ACTIVITY, (WRITER_NAME,))
                self.looks.append((time.time(), cursor.fetchall()))
                time.sleep(WATCH_EVERY)
        conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def during(self, start: float, end: float) -> str:
        """The waits seen from ``start`` to ``end``, most seen first, with how often."""
        seen: Counter[str] = Counter()
        looks = [rows for at, rows in self.looks if start <= at <= end]
        for rows in looks:
            seen.update(f"{process} {event}" for process, event in rows)
        top = ", ".join(f"{what} {count}" for what, count in seen.most_common(6))
        return f"{len(looks)} looks: {top or 'nothing busy'}"


def _log(text: str) -> None:
    EVENTS.append((time.time(), text))
    print(text, file=sys.stderr, flush=True)


def _worst(run: Run, name: str, watch: Watch) -> str:
    """The longest stall of migration ``name``: when it began, and what had happened last."""
    start = run.windows[name][0]
    inside = [(s, d) for s, d in run.samples if run._during(s, s + d) == name]
    began, duration = max(inside, key=lambda sample: sample[1])
    last = [text for at, text in EVENTS if at <= began]
    durations = sorted(d for _, d in inside)
    p99 = durations[int(len(durations) * 0.99)] if durations else 0.0
    waits = f" (waits seen during it, {watch.during(began, began + duration)})"
    return (
        f"{duration * 1000:.0f} ms, {began - start:.1f} s in, after "
        f'"{last[-1] if last else "the start"}"{waits}; 99th percentile {p99 * 1000:.0f} ms'
    )


def _project(admin: str, root: Path) -> tuple[Path, str]:
    """The migrations plus the generated type change and the data move, with snapshots."""
    source = MODELS_SOURCE.read_text().replace(*TYPE_CHANGE, 1)
    (root / "bench_models").mkdir()
    (root / "bench_models" / "__init__.py").write_text(source)
    directory = root / "migrations"
    shutil.copytree(MIGRATIONS, directory, ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, str(root))
    try:
        made = create("token_count_bigint", server_url=admin, directory=directory,
                      models="bench_models")  # fmt: skip
    finally:
        sys.path.remove(str(root))
    assert made.name is not None, "the models change produced no migration"
    (directory / f"{int(made.name[:3]) + 1:03d}_message_words.py").write_text(DATA_MOVE)
    with scratch_database(admin, "chatdb_bench_snapshots") as empty:
        write_snapshots.write_all(empty, directory)
    return directory, made.name


def _scalar(url: str, query: str) -> int:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute(query)
            return int(cursor.fetchone()[0])
    finally:
        conn.close()


def _migrate_process(directory: Path, url: str, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "chatdb", "migrate", "--directory", str(directory)]
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    with log.open("w") as err:
        return subprocess.Popen([*command, "--database", url], stderr=err, env=env)


def _killed_and_resumed(directory: Path, url: str, scratch: Path, kill_at: float) -> dict:
    """Migrate the data move, SIGKILL it once ``kill_at`` of the rows are filled, run it again.

    The rows that existed before must all end right; the writer's rows
    inserted after the backfill passed their key stay NULL (a plain backfill
    fills what exists; the application writes the column of new rows).
    """
    total = _scalar(url, "SELECT count(*) FROM messages")
    since = _scalar(url, "SELECT extract(epoch FROM now())::bigint")
    first = _migrate_process(directory, url, scratch / "first.log")
    _log("migrate started")
    while first.poll() is None:
        try:
            filled = _scalar(url, "SELECT count(words) FROM messages")
        except psycopg2.errors.UndefinedColumn:
            filled = 0
        if filled >= kill_at * total:
            first.send_signal(signal.SIGKILL)
            _log(f"SIGKILL with {filled:,} rows filled")
            break
        time.sleep(0.5)
    killed = first.wait() == -signal.SIGKILL
    before = _scalar(url, "SELECT count(words) FROM messages")
    second = _migrate_process(directory, url, scratch / "second.log")
    _log("migrate started again")
    status = second.wait()
    ended = time.time()
    _log("second run ended")
    log = (scratch / "second.log").read_text()
    print(log, file=sys.stderr, flush=True)
    match = _DONE.search(log)
    old = f"creation_date < to_timestamp({since})"
    return {
        "ended": ended,  # the migration's window closes here, before the checks below
        "killed": killed,
        "total": total,
        "before": before,
        "second": int(match[1].replace(",", "")) if match else None,
        "status": status,
        "wrong": _scalar(
            url, f"SELECT count(*) FROM messages WHERE {old} AND words IS DISTINCT FROM {WORDS}"
        ),
        "now": _scalar(url, "SELECT count(*) FROM messages"),
    }


def _markdown(
    args: argparse.Namespace,
    counts: dict[str, int],
    version: str,
    idle: Run,
    typed: tuple[Run, str],
    moved: tuple[Run, str],
    resume: dict,
    watch: Watch,
) -> str:
    (type_run, type_name), (move_run, move_name) = typed, moved
    type_stall, move_stall = type_run.stall(type_name), move_run.stall(move_name)
    ok = (
        resume["killed"] and resume["status"] == 0 and resume["wrong"] == 0
        and resume["second"] is not None and resume["second"] <= resume["now"] - resume["before"]
    )  # fmt: skip
    rate = len(type_run.samples) / max(1e-9, type_run.samples[-1][0] - type_run.samples[0][0])
    return "\n".join(
        [
            "## Online type changes and backfills under write traffic",
            "",
            f"`python -m bench.bench_online_changes --messages {args.messages}` on "
            f"{report.machine()}, PostgreSQL {version}, a machine shared with other developers "
            f"(load average {os.getloadavg()[0]:.1f} when the report was written). "
            f"The database ({bench_counts(counts)}) was built by `chatdb.testing.dataset` and "
            "migrated to head. The writer of `bench.bench_migrations` writes throughout (a "
            f"message, a tool call and a token row per transaction, about {rate:.0f} "
            "transactions/s); its longest stall is its slowest transaction overlapping the "
            "migration. Batches of at most 1,000 rows (halved after one over 50 ms), "
            "10 ms apart, each committed without waiting for the disk (the defaults). What "
            f"each server process waited on was looked at every {WATCH_EVERY * 1000:.0f} ms "
            "(`pg_stat_activity`), to say what a stall was.",
            "",
            "| migration | what it does | wall time | writer's longest stall |",
            "| --- | --- | ---: | ---: |",
            f"| `{type_name}` (generated) | `token_consumption.count` integer -> bigint: "
            f"expand, backfill, swap | {type_run.seconds(type_name):.1f} s "
            f"| **{type_stall * 1000:.0f} ms** |",
            f"| `{move_name}` (hand-written) | `messages.words` added and backfilled, killed "
            f"with SIGKILL part way, run again | {move_run.seconds(move_name):.1f} s "
            f"| **{move_stall * 1000:.0f} ms** |",
            f"| none (the writer alone, {IDLE_SECONDS:.0f} s, before them) | the machine's own "
            f"noise | | {idle.stall('idle') * 1000:.0f} ms |",
            "",
            f"The longest stalls: `{type_name}` {_worst(type_run, type_name, watch)}; "
            f"`{move_name}` {_worst(move_run, move_name, watch)}; the writer alone "
            f"{_worst(idle, 'idle', watch)}. Only the expand, the swap and `add_column` lock the "
            "table (each briefly); a backfill batch locks the rows it updates, none of which "
            "the writer touches here (its rows are filled by the trigger, or are new). The "
            "longest stalls are the disk: the writer's commit waiting for its WAL to be "
            "flushed (`IO:WalSync`, `LWLock:WALWrite`) while the checkpointer syncs the data "
            "files (`IO:DataFileSync`); the writer alone meets the same when a checkpoint "
            "ends. A backfill brings checkpoints sooner (it writes WAL: every page it "
            "touches after a checkpoint goes to the WAL whole), which is why its batches "
            "are kept short and commit without flushing.",
            "",
            f"Goal: no writer stall over {GOAL * 1000:.0f} ms: "
            f"{'met' if max(type_stall, move_stall) <= GOAL else 'NOT met'}.",
            "",
            f"Resume after SIGKILL: the first process had filled {resume['before']:,} of "
            f"{resume['total']:,} messages when it was killed; the second run filled "
            f"{resume['second'] or 0:,} more (the rest, with the writer's rows so far), "
            f"exited {resume['status']}, and {resume['wrong']:,} of the messages that existed "
            f"before end wrong: {'resumed right' if ok else 'FAILED'}. (A plain backfill "
            "fills the rows that exist; the application writes the column of new rows. "
            "`change_column_type` keeps new rows in step with its trigger.)",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kill-at", type=float, default=0.4, help="share filled before SIGKILL")
    parser.add_argument("--no-report", action="store_true", help="print, do not write the doc")
    add_server_option(parser)
    args = parser.parse_args()

    with (
        server(args.server) as admin,
        scratch_database(admin) as url,
        tempfile.TemporaryDirectory() as scratch,
    ):
        started = time.perf_counter()
        dataset.build(url, args.messages, args.threads, args.seed)
        with Runner(url, MIGRATIONS, log=_log) as runner:
            runner.migrate()
        counts = dataset.row_counts(url)
        _log(f"built and migrated in {time.perf_counter() - started:.0f} s: {counts}")
        directory, type_name = _project(admin, Path(scratch))
        watch = Watch(url)
        move_name = sorted(p.stem for p in directory.glob("0*.py"))[-1]

        def wait(windows: dict[str, tuple[float, float]]) -> None:
            begun = time.time()
            time.sleep(IDLE_SECONDS)
            windows["idle"] = (begun, time.time())

        idle = _with_writer(url, wait)

        def change_type(windows: dict[str, tuple[float, float]]) -> None:
            with Runner(url, directory, log=_log) as runner:
                begun = time.time()
                runner.migrate(type_name)
                windows[type_name] = (begun, time.time())

        typed = _with_writer(url, change_type)
        resume: dict = {}

        def move(windows: dict[str, tuple[float, float]]) -> None:
            begun = time.time()
            resume.update(_killed_and_resumed(directory, url, Path(scratch), args.kill_at))
            windows[move_name] = (begun, resume["ended"])

        moved = _with_writer(url, move)
        watch.stop()
        version = _scalar(url, "SHOW server_version_num")
    text = _markdown(
        args,
        counts,
        f"{version // 10000}.{version % 10000}",
        idle,
        (typed, type_name),
        (moved, move_name),
        resume,
        watch,
    )
    print(text)
    if not args.no_report:
        report.update_section(SECTION, text)


if __name__ == "__main__":
    main()
