"""``chatdb status`` and ``chatdb migrate`` on long histories: time and migration file loads.

For each length (25, 50, 100, 200 migrations) it writes a throwaway history
(``chatdb.testing.histories``: one table, then a column per migration, each
needing the model state the ones before it left) with its schema snapshots,
then, on an empty database, runs ``chatdb migrate`` and ``chatdb status``
in-process through the command line's own entry point, counting every
migration file loaded through ``chatdb.migrate.loader``. ``status`` is also
timed as a whole process (``python -m chatdb status``: interpreter start
included). The figures go into docs/benchmarks.md.

    python -m bench.bench_status [--server URL] [--repeat 5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bench import report
from bench.server import add_server_option, scratch_database, server
from chatdb.cli.main import cli
from chatdb.migrate import loader, write_snapshots
from chatdb.testing import histories

LENGTHS = (25, 50, 100, 200)
GOAL_SECONDS = 1.0
SECTION = "status"


@contextlib.contextmanager
def counted_loads() -> Iterator[list[str]]:
    """Every migration file loaded while inside, by name."""
    loaded: list[str] = []
    load = loader.load

    def counting(directory: Path, name: str) -> loader.MigrationFile:
        loaded.append(name)
        return load(directory, name)

    loader.load = counting
    try:
        yield loaded
    finally:
        loader.load = load


def command(*args: str) -> None:
    """Run one ``chatdb`` command in this process, its output discarded; raise on failure."""
    said = io.StringIO()
    try:
        with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
            cli.main(list(args), prog_name="chatdb", standalone_mode=False)
    except SystemExit as exc:
        raise RuntimeError(f"chatdb {args[0]} failed: {said.getvalue()}") from exc


def timed(run: Callable[[], object]) -> tuple[float, int]:
    """Seconds one call of ``run`` takes, and the migration files it loads."""
    with counted_loads() as loaded:
        started = time.perf_counter()
        run()
        return time.perf_counter() - started, len(loaded)


def measure(admin: str, length: int, repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="chatdb-bench-history-") as folder:
        directory = Path(folder) / "migrations"
        histories.write(directory, length)
        with scratch_database(admin) as empty:
            write_snapshots.write_all(empty, directory)
        where = ("--directory", str(directory))
        with scratch_database(admin) as url:
            target = ("--database", url, *where)
            migrate, migrate_loads = timed(lambda: command("migrate", *target))
            runs = [timed(lambda: command("status", *target)) for _ in range(repeat)]
            process = []
            for _ in range(repeat):
                started = time.perf_counter()
                subprocess.run(
                    [sys.executable, "-m", "chatdb", "status", *target],
                    check=True,
                    capture_output=True,
                )
                process.append(time.perf_counter() - started)
    return {
        "migrate": migrate,
        "migrate_loads": migrate_loads,
        "status": statistics.median(seconds for seconds, _ in runs),
        "status_loads": max(loads for _, loads in runs),
        "process": statistics.median(process),
    }


def markdown(figures: dict[int, dict[str, float]], repeat: int) -> str:
    lines = [
        "## `chatdb status` and `chatdb migrate` on long histories",
        "",
        f"`python -m bench.bench_status --repeat {repeat}` on {report.machine()}. Each history "
        "is one table created by the first migration and one column added by each later one "
        "(`chatdb/testing/histories.py`), so every migration needs the model state the ones "
        "before it left; snapshots written by `chatdb.migrate.write_snapshots`. `migrate` "
        "applies the whole history to an empty database once; `status` is the median of "
        f"{repeat} runs. Both run in-process through the command line's entry point; "
        "`python -m chatdb status` adds the interpreter's start. Loads: migration files "
        "executed through `chatdb.migrate.loader`.",
        "",
        "| migrations | `migrate` | files loaded | `status` | files loaded "
        "| `python -m chatdb status` |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for length, row in figures.items():
        lines.append(
            f"| {length} | {row['migrate']:.2f} s | {row['migrate_loads']:.0f} "
            f"| {row['status'] * 1000:.0f} ms | {row['status_loads']:.0f} "
            f"| {row['process'] * 1000:.0f} ms |"
        )
    longest = figures[max(figures)]
    met = longest["status"] < GOAL_SECONDS
    lines += [
        "",
        f"`migrate` loads each file once (the model state advances one migration at a time) "
        f"and `status` none. Goal: `status` on {max(figures)} migrations well under "
        f"{GOAL_SECONDS:g} s: {'met' if met else 'NOT met'} ({longest['status'] * 1000:.0f} ms).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_server_option(parser)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-report", action="store_true", help="print, do not write the doc")
    args = parser.parse_args()
    figures = {}
    with server(args.server) as admin:
        for length in LENGTHS:
            figures[length] = measure(admin, length, args.repeat)
            print(f"{length} migrations: {figures[length]}", flush=True)
    text = markdown(figures, args.repeat)
    print(text)
    if not args.no_report:
        report.update_section(SECTION, text)


if __name__ == "__main__":
    main()
