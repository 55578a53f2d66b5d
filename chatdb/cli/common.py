"""Pieces every chatdb command module shares: options, bounds, and the one-line error rule.

Command modules import the engine and the API inside the commands that use
them, so ``chatdb --help`` and light commands start fast.

Exit statuses, for every command: 0 done, 1 refused or failed (one line on
stderr), 2 usage (one line on stderr: an unknown option, a missing argument,
a value out of range), 130 interrupted. ``-v``, before or after the command
name, adds the traceback; ``-h`` is ``--help``.
"""

from __future__ import annotations

import json
import math
import sys
import traceback
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any, NoReturn

import click

from chatdb.cli import remedies
from chatdb.errors import ChatdbError, first_line
from chatdb.migrate.defaults import DEFAULT_LOCK_TIMEOUT, DEFAULT_LOCK_WAIT

if TYPE_CHECKING:
    from chatdb.migrate.executor import Runner

# ``-h`` as well as ``--help``, on the root command and, inherited, on every subcommand.
CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}
# Where ``-v`` is remembered: ``Context.meta`` is shared by a command and its parents.
_VERBOSE = "chatdb.verbose"
# The largest wait any option takes: a day. A bigger number is a typo (1e308), not a plan.
MAX_SECONDS = 86_400.0
# The most rows a listing prints, the deepest page it skips to, the largest batch it writes.
MAX_ROWS = 10_000
MAX_OFFSET = 1_000_000
MAX_BATCH = 100_000


class Seconds(click.FloatRange):
    """A number of seconds between ``minimum`` and a day; NaN and infinities are refused."""

    name = "seconds"

    def __init__(self, minimum: float) -> None:
        super().__init__(min=minimum, max=MAX_SECONDS)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        seconds = super().convert(value, param, ctx)
        if math.isnan(seconds):  # no comparison with the bounds refuses NaN
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        return seconds


def up_to(maximum: int) -> click.IntRange:
    """A whole number from 1 to ``maximum``."""
    return click.IntRange(min=1, max=maximum)


def _remember_verbose(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[_VERBOSE] = True


verbose_option = click.option(
    "-v",
    "--verbose",
    is_flag=True,
    expose_value=False,
    callback=_remember_verbose,
    help="Show tracebacks on errors.",
)


class OneLineUsage:
    """A click command whose usage errors are one line on stderr and exit status 2.

    click's own form is three or four lines (usage, a hint, a blank line, the
    error); chatdb's errors are one line, whatever their kind.
    """

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[misc]
        except click.Abort:  # click's form of Ctrl-C; it has ended the ^C line already
            from chatdb.cli.interrupt import interrupted

            interrupted(end_line=False)
        except click.UsageError as exc:  # ``error: <what> (see <command> --help)``, exit 2
            path = exc.ctx.command_path if exc.ctx is not None else "chatdb"
            click.echo(f"error: {_sentence(exc.format_message())} (see {path} --help)", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"error: {_sentence(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        if not standalone_mode:
            return result
        sys.exit(result if isinstance(result, int) else 0)


def _sentence(message: str) -> str:
    """click's message on one line, starting lower case like chatdb's own, without its full stop."""
    line = " ".join(message.split())
    if line[:1].isupper() and line[1:2].islower():
        line = line[0].lower() + line[1:]
    return line.removesuffix(".")


class Group(OneLineUsage, click.Group):
    """The root ``chatdb`` group."""


class Command(OneLineUsage, click.Command):
    """A command run on its own (``scripts/alembic_handover.py``)."""


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the result as JSON on stdout."
)


def print_json(value: Any) -> None:
    """The ``--json`` form of a command's result: one document on stdout (stderr stays prose)."""
    click.echo(json.dumps(value, indent=2))


def not_with_sql(as_json: bool, as_sql: bool) -> None:
    """``--json`` describes what ran; ``--sql`` prints a script instead of running: not both."""
    if as_json and as_sql:
        raise click.UsageError(
            "--json and --sql cannot be combined; choose one", click.get_current_context()
        )


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
    type=Seconds(0.1),
    default=DEFAULT_LOCK_TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    help="How long one statement may wait for a table lock before retrying.",
)
lock_wait_option = click.option(
    "--lock-wait",
    type=Seconds(0),
    default=DEFAULT_LOCK_WAIT,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for another migrator to finish before giving up.",
)


def say(message: str) -> None:
    click.echo(message, err=True)


def confirm(question: str, refusal: str) -> None:
    """Ask ``question`` (default no) on a terminal; without one, refuse with ``refusal``."""
    if not sys.stdin.isatty():
        raise ChatdbError(refusal)
    if not click.confirm(question, default=False, err=True):
        raise ChatdbError("not confirmed; nothing was changed")


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
    """Turn expected failures into one line on stderr; give the command ``-v`` for the traceback."""

    @verbose_option
    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ChatdbError as exc:
            fail(remedies.words(exc, remedies.CHATDB), exc)
        except click.ClickException:  # a usage error: the group prints it, exit 2
            raise
        except Exception as exc:  # an unexpected error still gets one line
            from chatdb.db.sqlstate import UNDEFINED_TABLE, sqlstate

            if sqlstate(exc) == UNDEFINED_TABLE:  # the data commands on an empty database
                fail(
                    f"the database has no chatdb schema ({first_line(exc)}); migrate it first: "
                    "chatdb migrate (chatdb handover for a legacy Alembic database)",
                    exc,
                )
            name, reason = type(exc).__name__, first_line(exc)
            said = name if reason == name else f"{name}: {reason}"
            fail(f"{said} (run with -v for details)", exc)

    return wrapper


def fail(message: str, exc: BaseException) -> NoReturn:
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.meta.get(_VERBOSE):  # -v, before or after the command name
        traceback.print_exception(exc)
    click.echo(f"error: {message}", err=True)
    sys.exit(1)
