"""Is the history a true account? Duplicates, rows out of order, and gaps.

chatdb applies migrations in file order, so the history must read as the
first migrations of the directory, each once, in order. A row deleted by
hand (a gap), a row inserted twice, or rows out of order would make the
next ``migrate`` re-apply a migration out of order, and every drift check
compare against the wrong migration. So every command that reads or writes
the history refuses such a history first, naming each faulty row, and
``chatdb repair history`` (:mod:`chatdb.migrate.history_repair`) rebuilds it
from the files once the schema proves them applied. Rows whose file is
missing are refused by the tamper check (:mod:`chatdb.migrate.verify`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from chatdb.errors import HistoryBroken
from chatdb.migrate.history import Applied


def problems(applied: Sequence[Applied], names: Sequence[str]) -> list[str]:
    """Each way ``applied`` (in id order) is not the first migrations of ``names``, in order."""
    found, seen = [], []
    for row in applied:
        if row.name in seen:
            found.append(f"{row.name} is recorded twice")
        elif row.name in names:
            seen.append(row.name)
    positions = [names.index(name) for name in seen]
    for earlier, later in itertools.pairwise(positions):
        if later < earlier:
            found.append(f"{names[later]} is recorded after {names[earlier]}, against file order")
    if positions:
        last = max(positions)
        found += [
            f"{name} is not recorded, though {names[last]} after it is"
            for name in names[:last]
            if name not in seen
        ]
    return found


def refuse(applied: Sequence[Applied], names: Sequence[str], verb: str) -> None:
    """Raise :class:`HistoryBroken` unless the history reads as the files say; before any write."""
    found = problems(applied, names)
    if found:
        raise HistoryBroken(
            f"refusing to {verb}: chatdb's history is not the migrations in file order "
            f"({'; '.join(found)}); nothing was changed; `chatdb repair history --dry-run` "
            "shows how it would rebuild the history from the files, if the schema proves "
            "them applied",
            problems=found,
        )
