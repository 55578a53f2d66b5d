"""The search, delete-thread and handover figures at ten million messages (not for CI).

Builds one legacy database of ``--messages`` (default 10,000,000) with the
realistic English vocabulary, measures the handover's steps 1-3 on it
(recognise, verify, adopt the baseline; each run undone), hands it over to head,
and measures scoped and unscoped searches and deleting threads of about ten
messages, in that one database (no copy: it is large).

    python -m bench.bench_scale [--server URL] [--messages 10000000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import chatdb
from bench import report
from bench.bench_chat import (
    UNSCOPED_QUERY,
    match_count,
    scoped_rows,
    summary,
    timings,
    typical_scopes,
)
from bench.bench_handover import measure as handover_times
from bench.bench_migrations import HEAD_DELETE, _delete_times, _threads_to_delete
from bench.server import add_server_option, scratch_database, server
from bench.vocabulary import english
from chatdb.legacy import handover
from chatdb.migrate.executor import Runner
from chatdb.testing import dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_server_option(parser)
    parser.add_argument("--messages", type=int, default=10_000_000)
    args = parser.parse_args()
    threads = args.messages // 10
    with server(args.server) as admin, scratch_database(admin) as url:
        started = time.perf_counter()
        dataset.build(url, messages=args.messages, threads=threads, vocabulary=english())
        built = time.perf_counter() - started
        counts = dataset.row_counts(url)
        print(f"built in {built:.0f} s: {counts}", flush=True)
        adopt = handover_times(url, 5)
        print(f"handover: {adopt}", flush=True)
        started = time.perf_counter()
        with Runner(url) as runner:
            # Each measured handover was undone: hand it over for good, to head.
            handover.handover(runner)
        to_head = time.perf_counter() - started
        head = chatdb.connect(url)
        scopes = typical_scopes(head)
        rows = scoped_rows(head, scopes)
        matches = match_count(head, UNSCOPED_QUERY)
        unscoped = summary(timings(lambda: chatdb.search_messages(UNSCOPED_QUERY), 10, 2))
        head.close()
        deletes = _delete_times(url, _threads_to_delete(url, 7), HEAD_DELETE)
        print(f"unscoped {unscoped}, deletes {deletes}", flush=True)
    ms = statistics.median(deletes) * 1000
    markdown = "\n".join(
        [
            "## At ten million messages",
            "",
            f"`python -m bench.bench_scale --messages {args.messages}` on {report.machine()}"
            f" (shared with other work; load average {os.getloadavg()[0]:.1f} at the end):"
            f" {counts['messages']:,} messages in {counts['threads']:,} threads, English text"
            f" (bench/vocabulary.py), built in {built / 60:.0f} min.",
            "",
            f"- Handover, steps 1-3 (recognise, verify, adopt the baseline), 5 runs each undone:"
            f" first {adopt[0] * 1000:.0f} ms, median of the rest"
            f" {statistics.median(adopt[1:]) * 1000:.0f} ms (goal ≤ 2 s). Then"
            f" `chatdb handover` to head (concurrent index builds): {to_head:.0f} s.",
            f"- Deleting a thread of about ten messages with everything under it (one"
            f" `DELETE FROM threads`, cascading), median of {len(deletes)}: {ms:.1f} ms"
            " (goal ≤ 5 ms).",
            f"- Unscoped `{UNSCOPED_QUERY}` ({matches:,} matches), top 20 with snippets:"
            f" median {unscoped[0]:.0f} ms, p95 {unscoped[1]:.0f} ms.",
            "",
            "Scoped searches right after the handover (200 per row, rotating over"
            f" {len(scopes['user_id'])} users with 18-22 threads, their vlabs, projects,"
            " threads; goal p95 ≤ 10 ms):",
            "",
            "| scope | query | median | p95 |",
            "| --- | --- | ---: | ---: |",
            *rows,
        ]
    )
    report.update_section("scale", markdown)
    print(markdown)


if __name__ == "__main__":
    main()
