"""``chatdb create``: write the next migration from the difference between models and history.

The models are built in a shadow database, their catalog diffed against the
head snapshot (:mod:`chatdb.migrate.autogenerate`), the plan written as a
migration file (:mod:`chatdb.migrate.writer`). Before anything is kept, the
new file is proven on another scratch database: applying the whole history
must give the models' catalog (which becomes the file's snapshot), and its
rollback the head snapshot again; and it must lint clean. Otherwise nothing
is written.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from chatdb.catalog import Catalog, diff, read_catalog, snapshots
from chatdb.errors import ChatdbError
from chatdb.migrate import autogenerate, history, lint, loader, preview, render_migration, shadow
from chatdb.migrate.apply import StepFailed
from chatdb.migrate.defaults import DEFAULT_MODELS
from chatdb.migrate.executor import Runner

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_FIX = (
    "change the model so the difference can be generated, or write the migration by hand "
    "(chatdb create --empty)"
)


@dataclass(frozen=True)
class Created:
    name: str | None  # None: no change
    path: Path | None = None
    summary: tuple[str, ...] = ()
    sql: str | None = None


def next_name(directory: Path, name: str) -> tuple[str, str]:
    """(the new migration's full name, the head migration's name)."""
    if not _NAME.match(name):
        raise ChatdbError(f"migration name {name!r}: use lower-case letters, digits and _")
    names = loader.names(directory)
    head = names[-1]
    return f"{int(head[:3]) + 1:03d}_{name}", head


def create(
    name: str,
    *,
    server_url: str,
    directory: Path,
    models: str = DEFAULT_MODELS,
    renames: Sequence[str] = (),
    backfills: Sequence[str] = (),
    empty: bool = False,
    sql_only: bool = False,
) -> Created:
    directory = Path(directory)
    full, head = next_name(directory, name)
    before = snapshots.expected(directory, head)
    if empty:
        source = render_migration.render(full, None, head)
        return _keep(directory, full, source, before.to_json(), ())
    after = shadow.models_catalog(server_url, models)
    _refuse_foreign_models(models, before, after)
    plan = autogenerate.plan(before, after, renames, backfills)
    if not plan.steps:
        return Created(None)
    source = render_migration.render(full, plan, head)
    summary = tuple(step.summary for step in plan.steps if step.up)
    if sql_only:
        return Created(full, None, summary, _script(directory, full, source, plan.atomic))
    snapshot = _prove(directory, full, source, before, after, server_url)
    return _keep(directory, full, source, snapshot, summary)


def _refuse_foreign_models(models: str, before: Catalog, after: Catalog) -> None:
    """An application's own models are not a changed chatdb schema: never plan chatdb's drop."""
    if before.tables and after.tables and not set(before.tables) & set(after.tables):
        raise ChatdbError(
            f"the models of {models} ({', '.join(sorted(after.tables))}) share no table with "
            f"chatdb's schema ({', '.join(sorted(before.tables))}): --models takes a changed "
            "copy of chatdb's own models; an application's own tables belong in its own "
            "PostgreSQL schema, with its own migrations (docs/MIGRATION_WORKFLOW.md, "
            '"An application\'s own tables")'
        )


def _keep(
    directory: Path, name: str, source: str, snapshot: str, summary: tuple[str, ...]
) -> Created:
    path = directory / f"{name}.py"
    path.write_text(source)
    snapshots.path_for(directory, name).write_text(snapshot)
    return Created(name, path, summary)


def _copy(directory: Path, name: str, source: str, into: Path) -> Path:
    copy = into / "migrations"
    shutil.copytree(directory, copy, ignore=shutil.ignore_patterns("conf.py", "__pycache__"))
    (copy / f"{name}.py").write_text(source)
    return copy


def _script(directory: Path, name: str, source: str, atomic: bool) -> str:
    with tempfile.TemporaryDirectory() as scratch:
        copy = _copy(directory, name, source, Path(scratch))
        statements = [s.sql for s in preview.offline_statements(copy, name)]
    lines = [f"{statement};" for statement in statements]
    return "\n".join(["BEGIN;", *lines, "COMMIT;"] if atomic else lines) + "\n"


def _prove(
    directory: Path, name: str, source: str, before: Catalog, after: Catalog, server_url: str
) -> str:
    """Apply and roll back the new file on a scratch database; its snapshot (JSON) if all agree."""
    with tempfile.TemporaryDirectory() as scratch:
        copy = _copy(directory, name, source, Path(scratch))
        with shadow.scratch_database(server_url, "proof") as url, Runner(url, copy) as runner:
            with _proving(name, "applying it"):
                runner.migrate()
            built = read_catalog(runner.database).without(history.TABLE)
            _agree(after, built, f"applying {name} does not build the models' schema")
            snapshots.path_for(copy, name).write_text(built.to_json())
            findings = lint.lint(copy / f"{name}.py")
            if findings:
                raise ChatdbError(
                    f"the generated {name} does not lint clean (a chatdb bug): {findings[0]}"
                )
            with _proving(name, "rolling it back"):
                runner.rollback()
            _agree(
                before,
                read_catalog(runner.database).without(history.TABLE),
                f"rolling back {name} does not restore the schema before it",
            )
    return built.to_json()


@contextlib.contextmanager
def _proving(name: str, doing: str) -> Iterator[None]:
    """Say a failure of the proof as one: the scratch database is gone, nothing is to recover."""
    try:
        yield
    except ChatdbError as exc:
        cause = exc.cause if isinstance(exc, StepFailed) else str(exc)
        raise ChatdbError(
            f"the generated {name} failed its proof on a scratch database ({doing}: {cause}); "
            f"nothing was written and no database of yours was touched; {_FIX}"
        ) from exc


def _agree(expected: Catalog, actual: Catalog, what: str) -> None:
    differences = diff(expected, actual)
    if differences:
        more = f" (and {len(differences) - 3} more)" if len(differences) > 3 else ""
        raise ChatdbError(
            f"{what}: {'; '.join(map(str, differences[:3]))}{more}; nothing was written; {_FIX}"
        )
