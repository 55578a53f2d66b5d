"""``chatdb handover``: adopt a legacy Alembic database, or hand it back with ``--undo``."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import click

from chatdb.cli.common import (
    CONTEXT_SETTINGS,
    Command,
    database_option,
    directory_option,
    friendly,
    json_option,
    lock_timeout_option,
    lock_wait_option,
    make_runner,
    print_json,
)
from chatdb.errors import ChatdbError

if TYPE_CHECKING:
    from chatdb.legacy.handover import Forgotten, HandBack, Handover


@click.command("handover", cls=Command, context_settings=CONTEXT_SETTINGS)
@database_option
@directory_option
@lock_timeout_option
@lock_wait_option
@click.option("--dry-run", is_flag=True, help="Check and print the plan; write nothing.")
@click.option(
    "--undo", is_flag=True, help="Hand the database back to Alembic (roll back, drop history)."
)
@click.option(
    "--baseline-only",
    is_flag=True,
    help="Adopt the baseline but leave the later migrations pending.",
)
@click.option(
    "--forget-history",
    is_flag=True,
    help="Drop the history a restored pre-handover backup left (schema at the legacy head).",
)
@json_option
@friendly
def handover_command(
    database: str | None,
    directory: str | None,
    lock_timeout: float,
    lock_wait: float,
    dry_run: bool,
    undo: bool,
    baseline_only: bool,
    forget_history: bool,
    as_json: bool,
) -> None:
    """Adopt a legacy database at Alembic 6d8986f38d7b without touching a row."""
    modes = {"--undo": undo, "--baseline-only": baseline_only, "--forget-history": forget_history}
    chosen = [flag for flag, on in modes.items() if on]
    if len(chosen) > 1:
        raise ChatdbError(f"{' and '.join(chosen)} cannot be combined; choose one")
    from chatdb.legacy import handover

    with make_runner(database, directory, lock_timeout, lock_wait) as runner:
        done: Handover | HandBack | Forgotten
        if forget_history:
            done = handover.forget_history(runner, dry_run=dry_run)
            lines = _forgotten(done)
        elif undo:
            done = handover.undo(runner, dry_run=dry_run)
            lines = _handed_back(done)
        else:
            done = handover.handover(runner, dry_run=dry_run, baseline_only=baseline_only)
            lines = _handed_over(done)
    if as_json:
        mode = "undo" if undo else "forget-history" if forget_history else "handover"
        print_json({"mode": mode, "dry_run": dry_run, "report": lines, **_fields(done)})
        return
    click.echo("\n".join(lines))


def _fields(done: Handover | HandBack | Forgotten) -> dict[str, Any]:
    """What the engine found and did, as data (``report`` has it in words)."""
    data = dataclasses.asdict(done)
    data.pop("dry_run")
    already = data.get("already")
    if already is not None:
        data["already"] = {**already, "migrated_at": already["migrated_at"].isoformat()}
    return data


def _numbered(steps: list[str]) -> list[str]:
    return [f"  {number}. {step}" for number, step in enumerate(steps, 1)]


def _handed_over(done: Handover) -> list[str]:
    from chatdb.catalog.legacy_version import ALEMBIC_TABLE, LEGACY_HEAD
    from chatdb.legacy.handover import BASELINE

    if done.already is not None:
        first = done.already
        when = f"{first.migrated_at:%Y-%m-%d %H:%M:%S %Z}"
        said = (
            f"{done.target} is already handed over ({first.name} adopted from Alembic "
            f"{first.adopted_from} on {when})"
            if first.adopted_from
            else f"{done.target} is already managed by chatdb ({first.name} applied on {when})"
        )
        if done.applied:
            left = ", ".join(done.applied)
            said += f"; applied the {len(done.applied)} migration(s) left: {left}"
        else:
            said += "; nothing to do"
            if done.pending:
                said += f"; {len(done.pending)} migration(s) pending: `chatdb migrate` applies them"
        return [said]
    found = f"{done.target}: Alembic revision {LEGACY_HEAD}, schema matches the legacy head"
    if done.dry_run:
        steps = [
            f"record {BASELINE} as applied (adopted from Alembic {LEGACY_HEAD}) without running it"
        ]
        if done.baseline_only:
            steps.append(
                f"stop there (--baseline-only), leaving {len(done.pending)} migration(s) pending"
            )
        else:
            steps += [f"apply {name}" for name in done.pending] or [
                "(no migrations after the baseline)"
            ]
        return [found, "dry run, nothing written; the handover would:", *_numbered(steps)]
    lines = [
        found,
        f"adopted: {BASELINE} recorded as applied, from Alembic {LEGACY_HEAD} "
        f"({ALEMBIC_TABLE} left as it is)",
    ]
    if done.baseline_only:
        return [*lines, f"{len(done.pending)} migration(s) pending; `chatdb migrate` applies them"]
    if not done.applied:
        return [*lines, "no migrations after the baseline: the database is at head"]
    return [*lines, f"applied {len(done.applied)} migration(s): {', '.join(done.applied)}"]


def _handed_back(done: HandBack) -> list[str]:
    from chatdb.catalog.legacy_version import LEGACY_HEAD
    from chatdb.migrate.history import TABLE

    if not done.had_history:
        return [f"{done.target} has no chatdb history; nothing to undo"]
    resumed = (
        [f"{done.resumed} was left half rolled back by an interrupted --undo; finishing it"]
        if done.resumed
        else []
    )
    if done.dry_run:
        steps = [f"roll back {name}" for name in done.rollbacks]
        steps.append(f"drop chatdb's history table {TABLE}")
        return [*resumed, "dry run, nothing written; --undo would:", *_numbered(steps)]
    rolled = (
        [f"rolled back {len(done.rollbacks)} migration(s): {', '.join(reversed(done.rollbacks))}"]
        if done.rollbacks
        else []
    )
    return [
        *resumed,
        *rolled,
        f"dropped {TABLE}; {done.target} is the legacy database at {LEGACY_HEAD} again",
    ]


def _forgotten(done: Forgotten) -> list[str]:
    from chatdb.catalog.legacy_version import LEGACY_HEAD
    from chatdb.migrate.history import TABLE

    recorded = ", ".join(done.recorded) or "nothing"
    if done.dry_run:
        return [
            f"dry run, nothing written; --forget-history would drop {TABLE} "
            f"(it records {recorded} applied)"
        ]
    return [
        f"dropped {TABLE} (it recorded {recorded} applied); {done.target} is the "
        f"legacy database at {LEGACY_HEAD}: `chatdb handover` adopts it again"
    ]
