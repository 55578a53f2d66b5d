"""Sending rows with ``COPY ... FROM STDIN``: the fastest way into PostgreSQL.

One ``COPY`` streams every row in PostgreSQL's text format, with no
statement to parse or plan per batch and no per-row parameter binding, so
bulk writes cost little more than the server's own work (triggers, indexes).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Sequence
from typing import Any

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


def copy_rows(cursor: Any, table: str, columns: str, rows: Iterable[Sequence[object]]) -> None:
    """Write ``rows`` (tuples in the order of ``columns``) into ``table`` with one COPY."""
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join(map(copy_value, row)))
        buffer.write("\n")
    buffer.seek(0)
    cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buffer)
