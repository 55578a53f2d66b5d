"""Where chatdb's own migrations are: the one answer every command and tool uses.

The history belongs to the code: the schema the models describe is the one
these files build, so commands use the migrations of the chatdb that runs
them, whatever the working directory. An installed chatdb carries them as
``chatdb/_migrations`` (setup.py maps the repository's ``migrations/`` there);
in a source checkout, the editable install's case, they are the checkout's
``migrations/`` so that a new migration is used as soon as it is written.
``--directory`` overrides both.
"""

from __future__ import annotations

from pathlib import Path

from chatdb.errors import ChatdbError

_PACKAGE = Path(__file__).resolve().parents[1]
INSTALLED = _PACKAGE / "_migrations"
CHECKOUT = _PACKAGE.parent / "migrations"


def migrations_dir() -> Path:
    """The migrations directory of the running chatdb."""
    if INSTALLED.is_dir():
        return INSTALLED
    if CHECKOUT.is_dir() and (_PACKAGE.parent / "setup.py").is_file():
        return CHECKOUT
    raise ChatdbError(
        f"chatdb is installed without its migrations ({INSTALLED} is missing); "
        "reinstall chatdb, or pass --directory"
    )


def resolve(directory: Path | str | None) -> Path:
    """``directory`` if one was given, else :func:`migrations_dir`."""
    return Path(directory) if directory is not None else migrations_dir()
