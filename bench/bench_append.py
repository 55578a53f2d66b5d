"""``chatdb.add_messages`` against raw psycopg2 writes, on a million-message database at head.

Builds the legacy-shaped dataset (chatdb/testing/dataset.py, English text),
hands it over to head with ``chatdb handover``, and runs the bulk-append
comparison of ``bench.bench_chat`` alone (``bench_chat`` runs it too, with the
search and reindex figures). The section goes into docs/benchmarks.md.

    python -m bench.bench_append [--server URL] [--messages 1000000] [--append 100000]
"""

from __future__ import annotations

import argparse
import time

import chatdb
from bench import report
from bench.bench_chat import APPEND_ROWS, append_section
from bench.server import add_server_option, scratch_database, server
from bench.vocabulary import english
from chatdb.legacy import handover
from chatdb.migrate import history
from chatdb.migrate.executor import Runner
from chatdb.testing import dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_server_option(parser)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--append", type=int, default=APPEND_ROWS, help="messages per append")
    args = parser.parse_args()
    with server(args.server) as admin, scratch_database(admin) as url:
        started = time.perf_counter()
        threads = args.messages // 10
        dataset.build(url, messages=args.messages, threads=threads, vocabulary=english())
        print(f"built in {time.perf_counter() - started:.0f}s", flush=True)
        with Runner(url) as runner:
            # Built with chatdb's baseline; without its history it is a legacy database.
            history.drop(runner.database)
            handover.handover(runner)
        head = chatdb.connect(url)
        markdown = append_section(url, head, args.append, args.messages)
        head.close()
    report.update_section("chat-append", markdown)
    print(markdown)


if __name__ == "__main__":
    main()
