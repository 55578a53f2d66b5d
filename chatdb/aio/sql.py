"""Running the data API's SQL on asyncpg: its placeholders, its parameters, its rows.

The sync API's statements use psycopg2's ``%s`` and ``%(name)s``; asyncpg
numbers them (``$1``). :func:`numbered` rewrites one into the other, so both
APIs run the very same statements, written once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import asyncpg
import peewee as pw

from chatdb.api.queries import rows_to_models

M = TypeVar("M", bound=pw.Model)
# Renders Peewee queries as PostgreSQL text without connecting (and without the router).
_RENDERER = pw.PostgresqlDatabase(None)
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%s|%%")


def numbered(sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> tuple[str, list[Any]]:
    """``sql`` with asyncpg's ``$n`` placeholders, and its arguments in their order."""
    names: list[str] = []
    position = 0

    def number(match: re.Match[str]) -> str:
        nonlocal position
        if match.group(0) == "%%":
            return "%"
        if match.group(1) is None:
            position += 1
            return f"${position}"
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    text = _PLACEHOLDER.sub(number, sql)
    if isinstance(params, Mapping):
        return text, [params[name] for name in names]
    return text, list(params)


async def fetch(connection: asyncpg.Connection, query: pw.Query) -> list[asyncpg.Record]:
    """The rows of a Peewee query."""
    sql, params = _RENDERER.get_sql_context().sql(query).query()
    text, args = numbered(sql, params)
    rows: list[asyncpg.Record] = await connection.fetch(text, *args)
    return rows


async def models(connection: asyncpg.Connection, model: type[M], query: pw.Query) -> list[M]:
    """The instances a Peewee ``model.select()`` query returns."""
    return rows_to_models(model, await fetch(connection, query))


async def run(
    connection: asyncpg.Connection, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
) -> list[asyncpg.Record]:
    """The rows of a statement written for psycopg2."""
    text, args = numbered(sql, params)
    rows: list[asyncpg.Record] = await connection.fetch(text, *args)
    return rows
