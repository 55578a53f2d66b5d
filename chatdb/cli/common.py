"""Pieces every chatdb command module shares: options and the one-line error rule.

Command modules import the engine and the API inside the commands that use
them, so ``chatdb --help`` and light commands start fast.

Every failure the user can fix ends as one line on stderr and exit status 1;
``-v`` (on the root command) adds the traceback.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any

import click

from chatdb.cli import remedies
from chatdb.errors import ChatdbError, first_line
from chatdb.migrate.defaults import DEFAULT_LOCK_TIMEOUT, DEFAULT_LOCK_WAIT

if TYPE_CHECKING:
    from chatdb.migrate.executor import Runner

database_option = click.option(
    "--database",
    "database",
    metavar="URL",
    default=None,
    help="PostgreSQL URL; default: $DATABASE_URL, else the embedded server.",
)
directory_option = click.option(
    "--directory",
    default=None,
    metavar="DIR",
    help="Directory holding the migration files; default: chatdb's own (chatdb migrations-dir).",
)
lock_timeout_option = click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0.1),
    default=DEFAULT_LOCK_TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    help="How long one statement may wait for a table lock before retrying.",
)
lock_wait_option = click.option(
    "--lock-wait",
    type=click.FloatRange(min=0),
    default=DEFAULT_LOCK_WAIT,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for another migrator to finish before giving up.",
)


def say(message: str) -> None:
    click.echo(message, err=True)


def target_url(database: str | None) -> str:
    """The chosen database's URL, named first on stderr (stdout stays the command's output)."""
    from chatdb.db.target import choose

    target = choose(database)
    say(target.describe())
    return target.url()


def make_runner(
    database: str | None,
    directory: str | None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    lock_wait: float = DEFAULT_LOCK_WAIT,
) -> Runner:
    # Imported here: commands that never migrate (--help, db, search) need not load it.
    from chatdb.migrate import loader, location
    from chatdb.migrate.executor import Runner

    # A bad directory is refused before choosing the database starts a server.
    loader.names(location.resolve(directory))
    return Runner(
        target_url(database), directory, lock_timeout=lock_timeout, lock_wait=lock_wait, log=say
    )


def friendly(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn expected failures into one line on stderr (traceback only with -v)."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ChatdbError as exc:
            fail(remedies.words(exc, remedies.CHATDB), exc)
        except Exception as exc:  # an unexpected error still gets one line
            name, reason = type(exc).__name__, first_line(exc)
            said = name if reason == name else f"{name}: {reason}"
            fail(f"{said} (run with -v for details)", exc)

    return wrapper


def fail(message: str, exc: BaseException) -> None:
    ctx = click.get_current_context(silent=True)
    while ctx is not None and not ctx.params.get("verbose"):
        ctx = ctx.parent
    if ctx is not None:  # some command on the way asked for -v
        traceback.print_exception(exc)
    click.echo(f"error: {message}", err=True)
    sys.exit(1)
