"""Handover time (recognise, verify, adopt) on a small and a large legacy database.

The handover reads ``pg_catalog`` and ``alembic_version`` only and writes one
history row, so its time must not grow with the data: this measures it on
1,000 and on 1,000,000 messages and writes the figures into
docs/benchmarks.md. Each size is handed over and handed back (``--undo``)
several times; the first run is reported apart (cold caches).

    python -m bench.bench_handover [--server URL] [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench import report
from bench.server import add_server_option, scratch_database, server
from chatdb.legacy import handover
from chatdb.migrate import history
from chatdb.migrate.executor import Runner
from chatdb.testing import dataset

SIZES = (1_000, 1_000_000)
GOAL_SECONDS = 2.0
GOAL_RATIO = 1.5


def measure(url: str, repeat: int) -> list[float]:
    """Seconds of each of ``repeat`` handovers (steps 1-3) of the database at ``url``."""
    with Runner(url) as runner:
        # The dataset is built with chatdb's baseline; without its history it is
        # exactly a legacy database.
        history.drop(runner.database)
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            handover.handover(runner, baseline_only=True)
            times.append(time.perf_counter() - started)
            handover.undo(runner)
        return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_server_option(parser)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    rows = []
    medians = {}
    with server(args.server) as admin:
        for messages in SIZES:
            with scratch_database(admin) as url:
                print(f"building {messages:,} messages", flush=True)
                dataset.build(url, messages=messages, threads=max(1, messages // 10))
                counts = dataset.row_counts(url)
                times = measure(url, args.repeat)
            medians[messages] = statistics.median(times[1:] or times)
            print(f"{messages:,} messages: {[round(t, 4) for t in times]}", flush=True)
            rows.append(
                f"| {messages:,} | {sum(counts.values()):,} | {times[0] * 1000:.0f} ms | "
                f"{medians[messages] * 1000:.0f} ms | {max(times) * 1000:.0f} ms |"
            )
    small, large = medians[SIZES[0]], medians[SIZES[-1]]
    ratio = large / small
    met = ratio <= GOAL_RATIO and max(medians.values()) < GOAL_SECONDS
    markdown = "\n".join(
        [
            "## Handover from Alembic (`chatdb handover`, steps 1-3)",
            "",
            "Recognise the Alembic revision, verify the catalog against the baseline's, and",
            "record the baseline as adopted, on a legacy database built by",
            "`chatdb/testing/dataset.py`;",
            f"{args.repeat} runs per size, each followed by `--undo`. Measured by",
            "`python -m bench.bench_handover` on " + report.machine() + ".",
            "",
            "| messages | rows in all tables | first run | median of the rest | slowest |",
            "| ---: | ---: | ---: | ---: | ---: |",
            *rows,
            "",
            f"Large / small (medians): {ratio:.2f}x. Goal: within {GOAL_RATIO}x of each other "
            f"and under {GOAL_SECONDS:g} s: {'met' if met else 'NOT met'}.",
        ]
    )
    report.update_section("handover", markdown)
    print(markdown)


if __name__ == "__main__":
    main()
