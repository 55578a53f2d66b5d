"""The plan: which migrations run, in which direction, in which order, from which state.

Built in one place for every front end: ``chatdb migrate`` and ``rollback``
(and their ``--sql``), the handover and its undo (and their dry runs), and
plain ``pw_migrate``, all through :class:`~chatdb.migrate.executor.Runner`,
which walks it with the one apply step (:mod:`chatdb.migrate.apply`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chatdb.errors import ChatdbError
from chatdb.migrate.loader import MigrationFile


@dataclass(frozen=True)
class Step:
    """One migration, applied (``upgrade``) or rolled back.

    ``replay`` is the history whose model state the step starts from: the
    migrations before it to apply it, up to and including it to roll it back.
    """

    migration: MigrationFile
    upgrade: bool
    replay: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.migration.name

    @property
    def atomic(self) -> bool:
        """Whether it runs in one transaction (else step by step, each step idempotent)."""
        return self.migration.atomic

    @property
    def verb(self) -> str:
        return "applying" if self.upgrade else "rolling back"

    @property
    def after(self) -> tuple[str, ...]:
        """The history once the step is done."""
        return (*self.replay, self.name) if self.upgrade else self.replay[:-1]


def upgrade(
    files: Mapping[str, MigrationFile], done: Sequence[str], target: str | None = None
) -> list[Step]:
    """Apply every pending migration in order, up to and including ``target``."""
    if target is not None and target not in files:
        raise ChatdbError(f"unknown migration {target!r}; `chatdb status` lists them")
    todo = [name for name in files if name not in done]
    if target is not None:
        todo = todo[: todo.index(target) + 1] if target in todo else []
    return [Step(files[name], True, (*done, *todo[:index])) for index, name in enumerate(todo)]


def rollback(files: Mapping[str, MigrationFile], done: Sequence[str], first: int) -> list[Step]:
    """Roll back ``done[first:]``, newest first."""
    return [
        Step(files[done[index]], False, tuple(done[: index + 1]))
        for index in range(len(done) - 1, first - 1, -1)
    ]


def first_to_roll_back(
    done: Sequence[str], names: Sequence[str], count: int | None, to: str | None
) -> int:
    """Index in ``done`` of the oldest migration a rollback of ``count`` (or to ``to``) undoes."""
    if count is not None and to is not None:
        raise ChatdbError("give either --count or --to, not both")
    if to is not None:
        if to not in done:
            known = to in names
            raise ChatdbError(
                f"--to {to}: "
                + ("that migration is not applied" if known else "unknown migration")
                + f"; applied: {', '.join(done) or 'none'}"
            )
        return done.index(to) + 1
    count = 1 if count is None else count
    if count < 1:
        raise ChatdbError(f"--count must be at least 1, got {count}")
    if count > len(done):
        raise ChatdbError(
            f"cannot roll back {count} migration(s): only {len(done)} applied"
            + (f" ({', '.join(done)})" if done else "")
        )
    return len(done) - count
