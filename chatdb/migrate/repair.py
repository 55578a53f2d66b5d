"""Putting a known function body back: the remedy for a body chatdb does not recognise.

Every check refuses a database whose search trigger function has a body
that is none of the known wordings (:mod:`chatdb.catalog.bodies`). This
replaces it with the known body it is nearest to (``CREATE OR REPLACE
FUNCTION``, same signature and attributes), under the migrator lock and in
one transaction. It touches no row: the trigger computes ``search_vector``
for rows written from then on; ``chatdb reindex-search`` recomputes stored
ones if the replaced body had written different vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import peewee as pw

from chatdb.catalog import Catalog, read_catalog
from chatdb.catalog.bodies import SEARCH_FUNCTION, KnownBody, fingerprint, known, nearest
from chatdb.db.urls import mask_password
from chatdb.errors import ChatdbError, first_line
from chatdb.migrate import privileges, settings
from chatdb.migrate.executor import Runner


@dataclass(frozen=True)
class Restoration:
    """What :func:`restore_function` found and did."""

    function: str
    body: KnownBody | None  # None: the body already was a known one
    sql: str
    done: bool


def restore_function(
    runner: Runner, function: str = SEARCH_FUNCTION, *, dry_run: bool = False
) -> Restoration:
    """Replace ``function``'s unknown body with the nearest known one (or say it is known)."""
    target = mask_password(runner.url)
    body = _replacement(runner, function, target)
    if body is None:
        return Restoration(function, None, "", done=False)
    sql = body.create_sql()
    if dry_run:
        return Restoration(function, body, sql, done=False)
    runner.refuse_read_only()
    owned = Catalog(functions={function: ""})
    privileges.refuse(runner.database, owned, f"repair {function} in {target}", create=False)
    try:
        with runner.migration_lock(), runner.database.atomic():
            for statement in settings.overrides(runner.lock_timeout, local=True):
                runner.database.execute_sql(statement)
            if _replacement(runner, function, target) != body:  # changed while we waited
                raise ChatdbError(f"{function} in {target} changed meanwhile; run it again")
            runner.database.execute_sql(sql)
    except pw.DatabaseError as exc:
        raise ChatdbError(
            f"replacing {function} in {target} failed: {first_line(exc)}; nothing was changed"
        ) from exc
    return Restoration(function, body, sql, done=True)


def _replacement(runner: Runner, function: str, target: str) -> KnownBody | None:
    """The known body to put back, or None when the live one is known already."""
    choices = known(function)
    if not choices:
        raise ChatdbError(f"chatdb knows no body of {function}; nothing to repair")
    source = read_catalog(runner.database).function_sources.get(function)
    if source is None:
        raise ChatdbError(
            f"{target} has no function {function}; `chatdb check` lists what differs from "
            "the migrations"
        )
    have = fingerprint(source)
    if any(body.fingerprint == have for body in choices):
        return None
    departure = nearest(function, source, choices[0].fingerprint)
    assert departure is not None  # choices is not empty and the body is none of them
    return departure.body
