"""Handing a legacy (Alembic-built) database over to chatdb, and back.

The handover adopts a live database without touching a row: it recognises the
Alembic revision, compares the live catalog with the catalog the baseline
migration is known to produce, and records the baseline as applied, in one
transaction under the migrator lock, without running it. Those steps read
``pg_catalog`` and ``alembic_version`` only, so their cost does not grow with
the data. The migrations after the baseline then run through the
:class:`~chatdb.runner.Runner`, exactly as ``chatdb migrate`` runs them.

``undo`` is the way back: it rolls back every migration after the baseline and
drops chatdb's history, leaving the catalog the legacy backend's Alembic
expects. An interrupted undo resumes when run again: every rollback already
recorded is done, and a non-atomic migration left half rolled back (the
history still names it, its steps are idempotent) is recognised by its
catalog, every part either as the migration left it or as it was before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import peewee as pw

from chatdb.catalog import Catalog, between, diff, read_catalog, snapshots
from chatdb.catalog.legacy_version import ALEMBIC_TABLE, LEGACY_HEAD, alembic_revisions
from chatdb.db.sqlstate import LOCK_NOT_AVAILABLE, sqlstate
from chatdb.db.urls import mask_password
from chatdb.errors import ChatdbError, DriftDetected, LockNotObtained, first_line
from chatdb.migrate import history, history_check, loader, plan, settings, verify
from chatdb.migrate.executor import Runner

BASELINE = "001_baseline"

# The legacy Alembic chain in order of application (the contract):
# revision -> (created, what it did).
LEGACY_CHAIN: dict[str, tuple[str, str]] = {
    "b57e558cf11f": (
        "2024-11-11",
        "initial: threads and messages, varchar ids, naive timestamps, messages.order",
    ),
    "169bed537507": ("2024-11-13", "entity enum and messages.entity"),
    "cf9eedbf9270": ("2025-01-08", "tool_calls table"),
    "818a9ba86187": ("2025-03-06", "threads.vlab_id and project_id nullable"),
    "08a638866869": ("2025-04-07", "messages.is_complete"),
    "0ea274d7a584": ("2025-04-14", "drop messages.order"),
    "52d7f4485020": ("2025-06-19", "messages.model"),
    "529e44b33a67": ("2025-06-18", "ids to uuid"),
    "dde4f8453a14": ("2025-07-09", "tool_selection table"),
    "02aab0a6eef4": (
        "2025-07-14",
        "token_consumption with the tokentype and task enums, drop messages.model, "
        "tool_selection.tool_name",
    ),
    "7122d2f48028": ("2025-07-21", "timestamps to timestamptz"),
    "12bd7610cbc2": ("2025-07-18", "task label CALL_WITHIN_TOOL"),
    "cd5a73ea91db": (
        "2025-08-11",
        "messages.search_vector with its trigger and GIN index",
    ),
    LEGACY_HEAD: ("2025-11-14", "complexity_estimation and the reasoninglevels enum"),
}


@dataclass(frozen=True)
class Handover:
    """What :func:`handover` found and did (or, in a dry run, would do)."""

    target: str
    already: history.Applied | None  # chatdb manages it already: nothing was done
    pending: list[str]  # after the baseline: the plan (dry run) or what is left
    applied: list[str]  # migrations run after the adoption
    adopted: bool
    baseline_only: bool
    dry_run: bool


@dataclass(frozen=True)
class HandBack:
    """What :func:`undo` found and did (or, in a dry run, would do)."""

    target: str
    had_history: bool
    resumed: str | None  # a migration an interrupted undo left half rolled back
    rollbacks: list[str]  # newest first: the plan (dry run) or what was rolled back
    dry_run: bool


@dataclass(frozen=True)
class Forgotten:
    """What :func:`forget_history` dropped (or, in a dry run, would drop)."""

    target: str
    recorded: list[str]
    dry_run: bool


def handover(runner: Runner, *, dry_run: bool = False, baseline_only: bool = False) -> Handover:
    """Recognise, verify, adopt and bring to head.

    Refusals raise :class:`ChatdbError` before anything is written. Every
    migration file is loaded first, and the plan after the baseline is the
    executor's own (:func:`chatdb.migrate.plan.upgrade`).
    """
    expected, checksum = _baseline(runner.directory)
    files = {m.name: m for m in loader.load_all(runner.directory)}
    state = _read(runner)
    _refuse_restored(runner, state, "hand over")
    if _recognise(state, expected) is not None:
        return _finish(runner, _already(state, dry_run=dry_run, baseline_only=baseline_only))
    _verify(state, expected)
    later = [step.name for step in plan.upgrade(files, [BASELINE])]
    until = BASELINE if baseline_only or not later else later[-1]
    runner.refuse_unprivileged("hand over", until, since=BASELINE)
    done = Handover(state.target, None, later, [], False, baseline_only, dry_run)
    if dry_run:
        return done
    if not _adopt(runner, expected, checksum):
        return _finish(
            runner, _already(_read(runner), dry_run=dry_run, baseline_only=baseline_only)
        )
    # On the progress stream, before the migrations' "applying" lines it precedes.
    runner.log(f"adopted {BASELINE} from Alembic {LEGACY_HEAD}")
    if baseline_only:
        return replace(done, adopted=True)
    return _finish(runner, replace(done, adopted=True))


def _finish(runner: Runner, done: Handover) -> Handover:
    """Bring a handed-over database to head: a handover ends there, or fails saying why.

    A rerun after an interruption (a migration left half done, or pending
    after ``--baseline-only``) finishes the work instead of reporting success
    with migrations still pending. A dry run, or ``--baseline-only``, does not.
    """
    if done.dry_run or done.baseline_only or not done.pending:
        return done
    try:
        ran = runner.migrate()
    except ChatdbError as exc:
        raise ChatdbError(
            f"{BASELINE} was adopted from Alembic {LEGACY_HEAD}, but bringing {done.target} "
            f"to head stopped: {exc}; once that is fixed, `chatdb migrate` finishes the job",
            remedy=exc.remedy,
        ) from exc
    return replace(done, applied=ran, pending=[])


def undo(runner: Runner, *, dry_run: bool = False) -> HandBack:
    """Roll back every migration after the baseline and drop chatdb's history."""
    expected, _ = _baseline(runner.directory)
    state = _read(runner)
    target = state.target
    if history.TABLE not in state.live.tables:
        return HandBack(target, False, None, [], dry_run)
    _refuse_restored(runner, state, "hand back")
    history_check.refuse(state.applied, loader.names(runner.directory), "hand back")
    names = [a.name for a in state.applied]
    if names and names[0] != BASELINE:
        raise ChatdbError(
            f"cannot hand back {target}: its history starts with {names[0]}, not {BASELINE}; "
            "only a database whose history starts at the baseline can be handed back"
        )
    if state.alembic != [LEGACY_HEAD]:
        found = ", ".join(state.alembic or []) or "nothing"
        raise ChatdbError(
            f"cannot hand back {target}: {ALEMBIC_TABLE} holds {found} instead of "
            f"{LEGACY_HEAD}, so the legacy backend could not carry on from it; "
            "restore the backup taken before the handover instead"
        )
    _check_reversible(runner.directory, target, state.applied[1:])
    files = {name: loader.load(runner.directory, name) for name in names}
    later = [step.name for step in plan.rollback(files, names, 1)]
    runner.refuse_unprivileged("hand back", BASELINE)
    drift = verify.drift(runner.database, runner.directory, state.applied) if names else []
    half = _half_rolled_back(runner.directory, state) if drift else None
    if half is not None:
        drift = []
    if drift:
        raise DriftDetected(
            f"cannot hand back {target}: its schema is not what its migrations produced "
            f"({len(drift)} difference(s)), so rolling them back would not restore the "
            f"legacy one; nothing was changed: {'; '.join(map(str, drift))}",
            differences=drift,
        )
    done = HandBack(target, True, half, later, dry_run)
    if dry_run:
        return done
    again = "running `chatdb handover --undo` again"
    if later:
        runner.rollback(len(later), resume=again)
    kept = f"chatdb's history was kept, {again} finishes the job"
    with runner.migration_lock(), _transaction(runner, f"handing back {target}", kept):
        now = [a.name for a in history.applied(runner.database)]
        if now not in ([BASELINE], []):
            raise ChatdbError(
                f"another migrator changed {target}'s history meanwhile (now: "
                f"{', '.join(now)}); run the handover with --undo again"
            )
        drift = diff(
            expected, read_catalog(runner.database).without(history.TABLE), column_order=True
        )
        if drift:
            raise DriftDetected(
                f"after rolling back, {target} still differs from the legacy schema; "
                f"chatdb's history was kept: {'; '.join(map(str, drift))}",
                differences=drift,
            )
        history.drop(runner.database)
    return done


def forget_history(runner: Runner, *, dry_run: bool = False) -> Forgotten:
    """Drop the history a restored pre-handover backup left behind; the way out of that state.

    ``pg_restore --clean`` of a dump taken before the handover brings back the
    legacy schema but leaves chatdb's history table, which the dump does not
    hold. Allowed only when the schema is exactly the legacy head and
    ``alembic_version`` says so: then the history describes nothing that is
    still there, and the handover can adopt the database afresh.
    """
    expected, _ = _baseline(runner.directory)
    state = _read(runner)
    _refuse_to_forget(state, expected)
    done = Forgotten(state.target, [a.name for a in state.applied], dry_run)
    if dry_run:
        return done
    with runner.migration_lock(), _transaction(runner, f"forgetting {state.target}'s history"):
        _refuse_to_forget(_read(runner), expected)
        history.drop(runner.database)
    return done


# -- steps ---------------------------------------------------------------------


def _refuse_restored(runner: Runner, state: _Found, doing: str) -> None:
    """A restored pre-handover backup: neither handed over nor legacy, one way out."""
    if verify.is_restored(runner.directory, state.applied, state.live.without(history.TABLE)):
        at = state.applied[-1].name
        raise DriftDetected(f"cannot {doing} {state.target}: {verify.restored_message(at)}")


def _refuse_to_forget(state: _Found, expected: Catalog) -> None:
    target = state.target
    if history.TABLE not in state.live.tables:
        raise ChatdbError(f"{target} has no chatdb history; there is nothing to forget")
    problems = diff(expected, state.live.without(history.TABLE), column_order=True)
    if problems:
        raise DriftDetected(
            f"refusing to forget {target}'s history: its schema is not exactly the legacy head "
            f"({len(problems)} difference(s), `chatdb check` lists them), so the history may "
            "still describe it; nothing was changed",
            differences=problems,
        )
    if state.alembic != [LEGACY_HEAD]:
        found = ", ".join(state.alembic or []) or "nothing"
        raise ChatdbError(
            f"refusing to forget {target}'s history: {ALEMBIC_TABLE} holds {found}, not "
            f"{LEGACY_HEAD}, so this is not the legacy database a pre-handover backup gives "
            "back; nothing was changed"
        )


def _baseline(directory: Path) -> tuple[Catalog, str]:
    """The baseline's expected catalog and file checksum."""
    path = directory / f"{BASELINE}.py"
    if BASELINE not in loader.names(directory):
        raise ChatdbError(f"{directory} has no {path.name}; pass the chatdb migrations directory")
    return snapshots.expected(directory, BASELINE), loader.checksum(path)


@dataclass(frozen=True)
class _Found:
    """What recognition reads: the catalog, chatdb's history and ``alembic_version``."""

    target: str
    live: Catalog
    applied: list[history.Applied]
    pending: list[str]
    alembic: list[str] | None  # None: no alembic_version table


def _read(runner: Runner) -> _Found:
    """Read the catalog and the two version tables, never a chat table's rows."""
    target = mask_password(runner.url)
    with _transaction(runner, f"reading {target}"):
        live = read_catalog(runner.database)
        alembic = alembic_revisions(runner.database)
        return _Found(target, live, history.applied(runner.database), runner.pending(), alembic)


def _recognise(state: _Found, expected: Catalog) -> history.Applied | None:
    """chatdb's first applied migration if it already manages the database.

    ``None`` means a legacy database at the head, ready for adoption; anything
    else is refused, saying what was found.
    """
    if state.applied:
        return state.applied[0]
    target, versions = state.target, state.alembic
    if versions is None:
        tables = sorted(set(state.live.tables) - {history.TABLE})
        chat = [t for t in tables if t in expected.tables]
        if chat:
            raise ChatdbError(
                f"{target} has chat tables ({', '.join(chat)}) but no {ALEMBIC_TABLE} table, "
                "so its legacy revision is unknown; bring it to "
                f"{LEGACY_HEAD} with the legacy backend's Alembic (alembic upgrade head), "
                "then run the handover again"
            )
        if tables:
            raise ChatdbError(
                f"{target} holds tables ({', '.join(tables)}) but neither chat tables nor "
                f"{ALEMBIC_TABLE}: it is not a legacy chat database; check --database"
            )
        raise ChatdbError(
            f"{target} is empty, there is nothing to hand over; create the schema with "
            "`chatdb migrate`"
        )
    if not versions:
        raise ChatdbError(
            f"{target}: {ALEMBIC_TABLE} is empty, so its legacy revision is unknown; "
            f"if the schema is at the legacy head, stamp it with the legacy backend "
            f"(alembic stamp {LEGACY_HEAD}), then run the handover again"
        )
    if len(versions) > 1:
        raise ChatdbError(
            f"{target}: {ALEMBIC_TABLE} holds {len(versions)} rows ({', '.join(versions)}), "
            "the legacy chain has a single head; leave only the revision the schema is at "
            "(alembic stamp), then run the handover again"
        )
    (revision,) = versions
    if revision == LEGACY_HEAD:
        return None
    if revision in LEGACY_CHAIN:
        created, what = LEGACY_CHAIN[revision]
        raise ChatdbError(
            f"{target} is at legacy revision {revision} ({created}: {what}), not at the "
            f"legacy head {LEGACY_HEAD}; bring it to {LEGACY_HEAD} with the legacy backend "
            "first (alembic upgrade head), then run the handover again"
        )
    raise ChatdbError(
        f"{target}: {ALEMBIC_TABLE} holds {revision!r}, which is not a revision of the legacy "
        f"chain (head {LEGACY_HEAD}); this database was not built by the legacy backend, "
        "check --database"
    )


def _verify(state: _Found, expected: Catalog) -> None:
    """Refuse, listing every difference, unless the live schema is the legacy head."""
    problems = diff(expected, state.live.without(history.TABLE), column_order=True)
    if problems:
        raise DriftDetected(
            f"{state.target} does not match the legacy schema at {LEGACY_HEAD} "
            f"({len(problems)} difference(s)); nothing was written: "
            f"{'; '.join(map(str, problems))}. Bring the schema back to what the legacy backend "
            "left, then run the handover again",
            differences=problems,
        )


def _adopt(runner: Runner, expected: Catalog, checksum: str) -> bool:
    """Record the baseline as applied; False when another handover got there first.

    Recognition and verification run again under the lock, inside the same
    transaction as the write, so nothing can change in between.
    """
    target = mask_password(runner.url)
    with runner.migration_lock(), _transaction(runner, f"adopting {target}"):
        state = _read(runner)
        if _recognise(state, expected) is not None:
            return False
        _verify(state, expected)
        history.ensure(runner.database)
        history.record(runner.database, BASELINE, checksum, adopted_from=LEGACY_HEAD)
        return True


def _half_rolled_back(directory: Path, state: _Found) -> str | None:
    """The last applied migration, if it runs outside a transaction and the live catalog
    lies between the catalogs before and after it (an interrupted rollback of it)."""
    names = [a.name for a in state.applied]
    if len(names) < 2 or loader.load(directory, names[-1]).atomic:
        return None
    before = snapshots.expected(directory, names[-2])
    after = snapshots.expected(directory, names[-1])
    return names[-1] if between(before, after, state.live.without(history.TABLE)) else None


def _check_reversible(directory: Path, target: str, later: list[history.Applied]) -> None:
    """Refuse before anything changes if one of these migrations cannot be rolled back."""
    problems = verify.tampered(directory, later)
    gone = {a.name for a in verify.missing(directory, later)}
    for migration in later:
        if migration.name not in gone:
            try:
                loader.load(directory, migration.name)
            except ChatdbError as exc:
                problems.append(str(exc))
    if problems:
        raise ChatdbError(
            f"cannot hand back {target}: a migration after the baseline cannot be rolled back "
            f"as it was applied ({'; '.join(problems)}); restore the file(s) as applied, "
            "nothing was changed"
        )


def _already(state: _Found, *, dry_run: bool = False, baseline_only: bool = False) -> Handover:
    first = state.applied[0]
    return Handover(state.target, first, state.pending, [], False, baseline_only, dry_run)


@contextlib.contextmanager
def _transaction(runner: Runner, doing: str, after: str = "nothing was written") -> Iterator[None]:
    """A transaction (or a savepoint in one) bounded by the runner's ``lock_timeout``.

    A database error, such as a lock wait that gave up, becomes one clear line.
    """
    try:
        with runner.database.atomic():
            for statement in settings.overrides(runner.lock_timeout, local=True):
                runner.database.execute_sql(statement)
            yield
    except pw.DatabaseError as exc:
        message = f"{doing} failed: {first_line(exc)}; {after}"
        if sqlstate(exc) == LOCK_NOT_AVAILABLE:
            hint = "; retry once the session holding the lock is done"
            raise LockNotObtained(message + hint) from exc
        raise ChatdbError(message) from exc
