"""Is the database what its migrations say it is? Drift and tamper findings.

Drift compares the live catalog with the stored catalog of the last applied
migration (``migrations/schema/<name>.json``), so it works at any point of
the history without a scratch database; the history table itself is left out.
Tampering compares the checksum recorded when each migration was applied with
its file today: a changed or missing file means the database was built by
code nobody can read any more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import peewee as pw

from chatdb.catalog import Catalog, Difference, diff, read_catalog, snapshots
from chatdb.catalog.legacy_version import alembic_revisions
from chatdb.errors import ChatdbError
from chatdb.migrate import history, history_check, loader

# Every new database has PL/pgSQL installed: the catalog before any migration.
EMPTY = Catalog(extensions=["plpgsql"])


@dataclass(frozen=True)
class Report:
    at: str | None
    drift: list[Difference]
    tampered: list[str]
    # A legacy Alembic database not handed over yet: its alembic_version rows
    # (``drift`` is then its difference from the first migration's schema).
    legacy: list[str] | None = None
    # The history says migrations after the first were applied, but the schema
    # is exactly the first's: a backup from before the handover was restored.
    restored: bool = False
    # Gaps, duplicates and rows out of order (chatdb.migrate.history_check).
    history: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return (
            not self.drift
            and not self.tampered
            and not self.history
            and not self.restored
            and not self.legacy_only
        )

    @property
    def legacy_only(self) -> bool:
        return self.at is None and self.legacy is not None

    @property
    def leads(self) -> bool:
        """Whether the verdict says more than the list of differences (print it first)."""
        return self.legacy_only or self.restored

    def verdict(self, *, hint: bool = True) -> str:
        """One line for ``chatdb status`` (``hint``: point to ``chatdb check``)."""
        where = f"after {self.at}" if self.at else "with no migrations applied"
        if self.legacy_only:
            assert self.legacy is not None
            found = (
                "its schema is the legacy head's: `chatdb handover` adopts it"
                if not self.drift
                else f"its schema differs from the legacy head's in {len(self.drift)} way(s); "
                "`chatdb handover --dry-run` lists them"
            )
            return (
                f"DRIFT: not handed over to chatdb yet, a legacy Alembic database "
                f"(alembic_version {', '.join(self.legacy) or 'empty'}); {found}"
            )
        if self.restored:
            return f"DRIFT: {restored_message(self.at)}"
        if self.clean:
            return f"clean: the schema is what the migrations leave {where}"
        parts = []
        if self.history:
            parts.append(f"{len(self.history)} problem(s) in the history")
        if self.drift:
            parts.append(f"{len(self.drift)} difference(s) from the schema expected {where}")
        if self.tampered:
            parts.append(f"{len(self.tampered)} applied migration file(s) changed or missing")
        return "DRIFT: " + "; ".join(parts) + (" (`chatdb check` lists them)" if hint else "")


def restored_message(at: str | None) -> str:
    """What a restored pre-handover backup looks like, and the way out."""
    return (
        f"the history says {at} is applied, but the schema is exactly the legacy head's "
        "(what the first migration leaves): a backup taken before the handover was restored "
        "and chatdb's history table survived it; `chatdb handover --forget-history` drops "
        "that history, then `chatdb handover` adopts the database again"
    )


def missing(directory: Path, applied: Sequence[history.Applied]) -> list[history.Applied]:
    """Applied migrations whose file is gone from ``directory``."""
    return [a for a in applied if not _path(directory, a).exists()]


def changed(directory: Path, applied: Sequence[history.Applied]) -> list[history.Applied]:
    """Applied migrations whose file differs from the one applied (when that was recorded)."""
    return [
        a
        for a in applied
        if a.checksum
        and _path(directory, a).exists()
        and loader.checksum(_path(directory, a)) != a.checksum
    ]


def tampered(directory: Path, applied: Sequence[history.Applied]) -> list[str]:
    """Readable tamper findings: changed files, then missing ones."""
    return [
        f"{a.name}: file changed since it was applied (checksum "
        f"{loader.checksum(_path(directory, a))[:12]}, applied {str(a.checksum)[:12]})"
        for a in changed(directory, applied)
    ] + [
        f"{a.name}: applied, but its file is missing from {directory}"
        for a in missing(directory, applied)
    ]


def _path(directory: Path, migration: history.Applied) -> Path:
    return Path(directory) / f"{migration.name}.py"


def live(database: pw.Database) -> Catalog:
    """The live catalog, chatdb's history table aside."""
    return read_catalog(database).without(history.TABLE)


def expected(directory: Path, applied: Sequence[history.Applied]) -> Catalog:
    """The catalog the applied migrations leave."""
    return snapshots.expected(Path(directory), applied[-1].name) if applied else EMPTY


def drift(
    database: pw.Database, directory: Path, applied: Sequence[history.Applied]
) -> list[Difference]:
    """Every difference between the live schema and the one the applied migrations leave."""
    return diff(expected(directory, applied), live(database))


def is_restored(directory: Path, applied: Sequence[history.Applied], catalog: Catalog) -> bool:
    """History past the first migration, schema exactly the first's (see :class:`Report`)."""
    first = loader.names(Path(directory))[0]
    if not applied or applied[-1].name == first:
        return False
    baseline = snapshots.expected(Path(directory), first)
    return not diff(baseline, catalog, column_order=True) and bool(
        diff(expected(directory, applied), catalog)
    )


def check(database: pw.Database, directory: Path) -> Report:
    """The drift and tamper report; a ChatdbError when there is nothing meaningful to compare."""
    names = loader.names(Path(directory))  # no migrations found is an error, not "clean"
    applied = history.applied(database)
    catalog = live(database)
    legacy = None if applied else alembic_revisions(database)
    if not applied and legacy is not None:
        baseline = snapshots.expected(Path(directory), names[0])
        drift = diff(baseline, catalog, column_order=True)  # the legacy contract
        return Report(at=None, drift=drift, tampered=[], legacy=legacy)
    if not applied and catalog.tables:
        ours = snapshots.expected(Path(directory), names[0]).tables
        if not set(catalog.tables) & set(ours):
            raise ChatdbError(
                f"this database holds tables ({', '.join(sorted(catalog.tables))}) but neither "
                "chat tables nor chatdb history: it belongs to another application; check "
                "--database"
            )
    return Report(
        at=applied[-1].name if applied else None,
        drift=diff(expected(directory, applied), catalog),
        tampered=tampered(directory, applied),
        restored=is_restored(directory, applied, catalog),
        history=history_check.problems(applied, names),
    )
