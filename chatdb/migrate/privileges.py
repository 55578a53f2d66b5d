"""Preflight: can the connected role do every step of a plan, before the first write?

PostgreSQL lets only an object's owner (or a member of the owning role, or
a superuser) alter or drop it, and only a role with ``CREATE`` on a schema
create objects in it. A migrator missing either fails at the first step
that needs it, after earlier steps (or the handover's adoption) were
already written. So every writing command checks first, from the catalog
alone, and refuses naming each object it cannot touch, with the statements
that fix it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import peewee as pw

from chatdb.catalog import SCHEMA, Catalog, lookup
from chatdb.errors import PrivilegeMissing


@dataclass(frozen=True)
class NotOwned:
    kind: str  # TABLE, TYPE or FUNCTION
    name: str
    owner: str


@dataclass(frozen=True)
class Shortfall:
    """What the role lacks: objects it does not own, and whether it may create in the schema."""

    role: str
    not_owned: list[NotOwned]
    can_create: bool

    def fixes(self) -> list[str]:
        """The statements an owner or superuser runs to close the gap."""
        role = quote(self.role)
        out = [
            f"ALTER {o.kind} {SCHEMA}.{quote(o.name) if o.kind != 'FUNCTION' else o.name} "
            f"OWNER TO {role}"
            for o in self.not_owned
        ]
        if not self.can_create:
            out.append(f"GRANT CREATE ON SCHEMA {SCHEMA} TO {role}")
        return out


def shortfall(
    database: pw.Database, objects: Catalog, extra_tables: Iterable[str] = (), *, create: bool
) -> Shortfall | None:
    """What the current role lacks to change ``objects`` (and create, if ``create``)."""
    rows = lookup.not_owned(
        database, [*objects.tables, *extra_tables], list(objects.enums), list(objects.functions)
    )
    role, can_create = lookup.role_may_create(database)
    missing = Shortfall(role, [NotOwned(*row) for row in rows], can_create or not create)
    return missing if missing.not_owned or not missing.can_create else None


def refuse(
    database: pw.Database,
    objects: Catalog,
    doing: str,
    extra_tables: Iterable[str] = (),
    *,
    create: bool,
) -> None:
    """Raise :class:`PrivilegeMissing` unless the role can do all of it; reads the catalog only."""
    missing = shortfall(database, objects, extra_tables, create=create)
    if missing is None:
        return
    lacks = [f"does not own {o.kind.lower()} {o.name} (owner {o.owner})" for o in missing.not_owned]
    if not missing.can_create:
        lacks.append(f"has no CREATE privilege on schema {SCHEMA}")
    raise PrivilegeMissing(
        f"role {missing.role} cannot {doing}: it {', '.join(lacks)}; run the command as the "
        f"owner, or have the owner or a superuser run: {'; '.join(missing.fixes())}; "
        "nothing was written",
        missing,
    )


def quote(identifier: str) -> str:
    """An identifier as SQL needs it written: bare when it can be, else double-quoted."""
    if identifier.isidentifier() and identifier == identifier.lower() and identifier.isascii():
        return identifier
    return '"' + identifier.replace('"', '""') + '"'
