"""``chatdb repair history``: rebuild a broken history from the files, once the schema proves it.

A history with a gap, a duplicate or rows out of order
(:mod:`chatdb.migrate.history_check`) is refused by every command. The
way out is to write it again as the first migrations of the directory, in
order, up to the furthest one recorded, but only when the live schema is
exactly what those migrations leave (their stored snapshot): then every
one of them really ran, whatever the rows say. Rows keep their time,
checksum and Alembic origin; a migration with no row gets the checksum of
its file and the time of the repair. Rows for files that are gone are not
guessed at: the file must be restored first. Under the migrator lock, in
one transaction; no other table is touched.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from chatdb.catalog import diff, snapshots
from chatdb.db.urls import mask_password
from chatdb.errors import ChatdbError, DriftDetected
from chatdb.migrate import history, history_check, loader, verify
from chatdb.migrate.executor import Runner


@dataclass(frozen=True)
class Rebuilt:
    """The history before and after a repair (``problems`` empty: nothing to do)."""

    target: str
    problems: list[str]
    before: list[str]
    after: list[str]
    dry_run: bool


def repair(runner: Runner, *, dry_run: bool = False) -> Rebuilt:
    target = mask_password(runner.url)
    names = loader.names(runner.directory)
    applied = runner.applied()
    found = history_check.problems(applied, names)
    before = [a.name for a in applied]
    if not found:
        return Rebuilt(target, [], before, before, dry_run)
    rows = _rebuilt(runner, applied, names, target)
    done = Rebuilt(target, found, before, [row.name for row in rows], dry_run)
    if dry_run:
        return done
    runner.refuse_read_only()
    with runner.migration_lock(), runner.database.atomic():
        if runner.applied() != applied:
            raise ChatdbError(f"the history of {target} changed meanwhile; run the repair again")
        history.rewrite(runner.database, rows)
        history.create(runner.database)  # the unique name constraint, if it was dropped
    return done


def _rebuilt(
    runner: Runner, applied: list[history.Applied], names: list[str], target: str
) -> list[history.Applied]:
    """The rows the history should hold, once the schema proves them; refuses otherwise."""
    gone = [a.name for a in applied if a.name not in names]
    if gone:
        raise ChatdbError(
            f"cannot rebuild the history of {target}: it records {', '.join(gone)}, whose "
            f"file is not in {runner.directory}; restore the file(s) first; nothing was changed"
        )
    last = names[max(names.index(a.name) for a in applied)]
    wanted = names[: names.index(last) + 1]
    differences = diff(snapshots.expected(runner.directory, last), verify.live(runner.database))
    if differences:
        raise DriftDetected(
            f"cannot rebuild the history of {target}: its schema is not what the migrations up "
            f"to {last} leave ({len(differences)} difference(s): "
            f"{'; '.join(map(str, differences[:3]))}), so it does not prove them applied; "
            "nothing was changed",
            differences=differences,
        )
    first: dict[str, history.Applied] = {}
    for row in applied:
        first.setdefault(row.name, row)
    now = dt.datetime.now(dt.UTC)
    return [
        first.get(name)
        or history.Applied(name, now, loader.checksum(runner.directory / f"{name}.py"), None)
        for name in wanted
    ]
