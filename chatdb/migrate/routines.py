"""Functions and triggers as migration operations, each with an exact rollback.

A migration records the definitions it writes and the ones it replaces or
drops, so its rollback puts back exactly what was there:

- ``create_function(migrator, definition, previous=None)``: ``CREATE OR
  REPLACE``; its rollback is ``create_function(migrator, previous)`` when it
  replaced one, else ``drop_function(migrator, definition)``;
- ``create_trigger(migrator, definition, previous=None)`` and
  ``drop_trigger(migrator, definition)`` alike (moving a trigger onto
  another table is a drop and a create).

The live function or trigger is compared with what the migration recorded
(the body of a function, the definition of a trigger as ``pg_get_triggerdef``
spells it), before the migration's first statement for a replacement or a
drop, as it is made for a new one: one that differs is refused, since the
rollback could not put it back. ``pg_get_functiondef`` and
``pg_get_triggerdef`` give the definitions to record. Each statement is
idempotent (``CREATE OR REPLACE``, ``DROP ... IF EXISTS``), so a run again
after an interruption completes the migration.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import peewee as pw
from peewee_migrate import Migrator

from chatdb.catalog import lookup
from chatdb.errors import ChatdbError
from chatdb.migrate.operations import _online, _queue

_FUNCTION = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+(?:public\.)?([a-z_][a-z0-9_]*)\s*\(([^)]*)\)"
    r"(.*)$",
    re.I | re.S,
)
_BODY = re.compile(r"\bAS\s+(\$[a-z_0-9]*\$)(.*?)\1", re.I | re.S)
_TRIGGER = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?TRIGGER\s+([a-z_][a-z0-9_]*)\s+(.*?)\s+ON\s+"
    r"(?:public\.)?([a-z_][a-z0-9_]*)\s+(.*)$",
    re.I | re.S,
)


def _function(definition: str) -> tuple[str, str, str]:
    """(signature, rest of the definition, body) of ``CREATE FUNCTION name(args) ...``."""
    match = _FUNCTION.match(definition)
    body = _BODY.search(definition)
    if match is None or body is None:
        raise ValueError(
            "not a function definition (CREATE FUNCTION name(argument types) ... AS $$...$$): "
            f"{definition[:60]!r}"
        )
    return f"{match[1]}({' '.join(match[2].split())})", match[3], body[2]


def _trigger(definition: str) -> tuple[str, str, str]:
    """(name, table, rest) of ``CREATE TRIGGER name ... ON table ...``."""
    match = _TRIGGER.match(definition)
    if match is None:
        raise ValueError(f"not a trigger definition (CREATE TRIGGER name ... ON table ...): "
                         f"{definition[:60]!r}")  # fmt: skip
    return match[1], match[3], f"{match[2]} ON {match[3]} {match[4]}"


def _spelled(definition: str) -> str:
    """A trigger definition as ``pg_get_triggerdef`` spells it, to compare with the live one."""
    table = _trigger(definition)[1]
    text = " ".join(definition.split())
    text = re.sub(r"^CREATE\s+(?:OR\s+REPLACE\s+)?TRIGGER", "CREATE TRIGGER", text, flags=re.I)
    text = re.sub(rf"\bON\s+(?:public\.)?{table}\b", f"ON public.{table}", text, count=1)
    return re.sub(r"\bEXECUTE\s+PROCEDURE\b", "EXECUTE FUNCTION", text, flags=re.I).lower()


def _beforehand(
    previous: str | None, refuse: Callable[[pw.Database], None]
) -> Callable[[pw.Database], None] | None:
    """The check run before the migration's first statement: for a replacement only.

    A new function or trigger is checked as it is made (an earlier step of
    the migration may drop one of the same name); in an atomic migration a
    refusal then still leaves the database as it was.
    """
    return refuse if previous is not None else None


def create_function(migrator: Migrator, definition: str, previous: str | None = None) -> str:
    """``CREATE OR REPLACE`` a function; ``previous`` is the definition it replaces, if any.

    Returns its signature (``name(argument types)``). Refused when the live
    function is neither ``previous`` nor ``definition``.
    """
    signature, rest, body = _function(definition)
    recorded = {body} | ({_function(previous)[2]} if previous is not None else set())

    def refuse(database: pw.Database) -> None:
        source = lookup.function_source(database, signature)
        if source is not None and source not in recorded:
            raise ChatdbError(
                f"refusing to replace function {signature}: its live body is not the one this "
                "migration records as previous, so its rollback could not put it back; pass "
                "the live definition as previous= (nothing of this migration ran)"
            )

    statement = f"CREATE OR REPLACE FUNCTION {signature}{rest}".rstrip()

    def plan(database: pw.Database, _in_transaction: bool) -> list[str]:
        if _online(database):
            refuse(database)
        return [statement]

    _queue(migrator, f"create_function {signature}", plan, refuse=_beforehand(previous, refuse))
    return signature


def drop_function(migrator: Migrator, definition: str) -> str:
    """Drop the function ``definition`` made (kept in the migration for its rollback)."""
    signature, _rest, body = _function(definition)

    def refuse(database: pw.Database) -> None:
        source = lookup.function_source(database, signature)
        if source is not None and source != body:
            raise ChatdbError(
                f"refusing to drop function {signature}: its live body differs from the "
                "definition this migration records, so its rollback could not put it back "
                "(nothing of this migration ran)"
            )

    statement = f"DROP FUNCTION IF EXISTS {signature}"
    _queue(migrator, f"drop_function {signature}", lambda _d, _t: [statement], refuse=refuse)
    return signature


def create_trigger(migrator: Migrator, definition: str, previous: str | None = None) -> str:
    """``CREATE OR REPLACE`` a trigger; ``previous`` is the definition it replaces, if any."""
    name, table, rest = _trigger(definition)
    recorded = {_spelled(definition)} | ({_spelled(previous)} if previous else set())

    def refuse(database: pw.Database) -> None:
        live = lookup.trigger(database, table, name)
        if live is not None and live.lower() not in recorded:
            raise ChatdbError(
                f"refusing to replace trigger {name} on {table}: it is {live}, not what this "
                "migration records as previous, so its rollback could not put it back "
                "(nothing of this migration ran)"
            )

    def plan(database: pw.Database, _in_transaction: bool) -> list[str]:
        if _online(database):
            if (lookup.trigger(database, table, name) or "").lower() == _spelled(definition):
                return []
            refuse(database)
        return [f"CREATE OR REPLACE TRIGGER {name} {rest}"]

    _queue(migrator, f"create_trigger {name}", plan, refuse=_beforehand(previous, refuse))
    return name


def drop_trigger(migrator: Migrator, definition: str) -> str:
    """Drop the trigger ``definition`` made (kept in the migration for its rollback)."""
    name, table, _rest = _trigger(definition)

    def refuse(database: pw.Database) -> None:
        live = lookup.trigger(database, table, name)
        if live is not None and live.lower() != _spelled(definition):
            raise ChatdbError(
                f"refusing to drop trigger {name} on {table}: it is {live}, not the definition "
                "this migration records, so its rollback could not put it back "
                "(nothing of this migration ran)"
            )

    statement = f"DROP TRIGGER IF EXISTS {name} ON {table}"
    _queue(migrator, f"drop_trigger {name}", lambda _d, _t: [statement], refuse=refuse)
    return name
