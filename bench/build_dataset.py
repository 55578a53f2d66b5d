"""Build a legacy-shaped chat database on a throwaway server and print its row counts."""

from __future__ import annotations

import argparse
import time

from bench.server import add_server_option, scratch_database, server
from chatdb.testing.dataset import build, row_counts


def main() -> None:
    parser = argparse.ArgumentParser(description="Build a legacy-shaped chat database.")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    add_server_option(parser)
    args = parser.parse_args()
    with server(args.server) as admin, scratch_database(admin) as url:
        started = time.perf_counter()
        build(url, args.messages, args.threads, args.seed)
        elapsed = time.perf_counter() - started
        print(f"built in {elapsed:.1f}s: {row_counts(url)}")


if __name__ == "__main__":
    main()
