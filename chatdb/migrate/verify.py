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
from dataclasses import dataclass
from pathlib import Path

import peewee as pw

from chatdb.drift import snapshots
from chatdb.drift.alembic import alembic_revisions
from chatdb.drift.catalog import Catalog, diff, read_catalog
from chatdb.migrate import history, loader

# Every new database has PL/pgSQL installed: the catalog before any migration.
EMPTY = Catalog(extensions=["plpgsql"])


@dataclass(frozen=True)
class Report:
    at: str | None
    drift: list[str]
    tampered: list[str]
    # A legacy Alembic database not handed over yet: its alembic_version rows.
    legacy: list[str] | None = None

    @property
    def clean(self) -> bool:
        return not self.drift and not self.tampered

    def verdict(self, *, hint: bool = True) -> str:
        """One line for ``chatdb status`` (``hint``: point to ``chatdb check``)."""
        where = f"after {self.at}" if self.at else "with no migrations applied"
        if self.at is None and self.legacy is not None:
            return (
                f"DRIFT: not handed over to chatdb yet, a legacy Alembic database "
                f"(alembic_version {', '.join(self.legacy) or 'empty'}); "
                "`chatdb handover --dry-run` checks whether it can be adopted"
            )
        if self.clean:
            return f"clean: the schema is what the migrations leave {where}"
        parts = []
        if self.drift:
            parts.append(f"{len(self.drift)} difference(s) from the schema expected {where}")
        if self.tampered:
            parts.append(f"{len(self.tampered)} applied migration file(s) changed or missing")
        return "DRIFT: " + "; ".join(parts) + (" (`chatdb check` lists them)" if hint else "")


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


def drift(database: pw.Database, directory: Path, applied: Sequence[history.Applied]) -> list[str]:
    """Every difference between the live schema and the one the applied migrations leave."""
    expected = snapshots.expected(Path(directory), applied[-1].name) if applied else EMPTY
    return diff(expected, read_catalog(database).without(history.TABLE))


def check(database: pw.Database, directory: Path) -> Report:
    applied = history.applied(database)
    return Report(
        at=applied[-1].name if applied else None,
        drift=drift(database, directory, applied),
        tampered=tampered(directory, applied),
        legacy=None if applied else alembic_revisions(database),
    )
