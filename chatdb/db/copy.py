"""Sending rows with ``COPY ... FROM STDIN``: the fastest way into PostgreSQL.

One ``COPY`` streams every row in PostgreSQL's text format, with no
statement to parse or plan per batch and no per-row parameter binding, so
bulk writes cost little more than the server's own work (triggers, indexes).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg2

# Characters of text sent per read: a few rows' worth of round trips into Python.
CHUNK = 1 << 16
# Characters the text format gives a meaning to, escaped.
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_value(value: object) -> str:
    """``value`` as one field of COPY's text format."""
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value).translate(_ESCAPES)


class _Stream:
    """``rows`` as COPY text, formatted as the server asks for it (a file for ``copy_expert``)."""

    def __init__(self, rows: Iterable[Sequence[object]]):
        self._lines = ("\t".join(map(copy_value, row)) + "\n" for row in rows)
        self.failure: Exception | None = None  # what producing the rows raised

    def read(self, size: int = -1) -> str:
        chunk: list[str] = []
        length = 0
        try:
            for line in self._lines:
                chunk.append(line)
                length += len(line)
                if 0 <= size <= length:
                    break
        except Exception as exc:  # the driver cancels the COPY; copy_rows raises this
            self.failure = exc
            raise
        return "".join(chunk)


def copy_rows(cursor: Any, table: str, columns: str, rows: Iterable[Sequence[object]]) -> None:
    """Write ``rows`` (tuples in the order of ``columns``) into ``table`` with one COPY.

    The text is formatted in chunks while the server works on the ones sent
    before (the server, not the client, is the slow side), not built whole
    first: formatting costs no wall time and no memory for a second copy.
    ``rows`` may be a generator that checks what it yields: an exception it
    raises cancels the COPY and is raised here as it is.
    """
    stream = _Stream(rows)
    try:
        cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", stream, size=CHUNK)
    except psycopg2.Error:
        if stream.failure is not None:
            raise stream.failure from None
        raise
