"""The one exception family: every problem a caller can fix is a :class:`ChatdbError`.

The command line turns it into a single clear line. Its subclasses name the
situations a program may want to tell apart (not found, bad input, retry
later, point at another server, ...); the message alone is for people.
Where the way on is an option of the command that ran (``--yes`` for
``chatdb``, an environment variable for plain ``pw_migrate``), the error
carries a :class:`Remedy` instead of naming the option: each front end
words it for its own options (``chatdb.cli.remedies``).
:class:`NotFound` and :class:`InvalidInput` are also ``LookupError`` and
``ValueError``, what the data API raised before they existed.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence


class Remedy(enum.Enum):
    """A way on that the running front end words with its own options."""

    CONFIRM_DATA_LOSS = "confirm that data may be dropped"
    ACCEPT_CHANGED = "accept changed applied files"
    IGNORE_DRIFT = "go on although the schema drifted"
    WAIT_LONGER = "wait longer for the migrator lock"


class ChatdbError(Exception):
    """A problem the user can fix; its message says what happened and what to do."""

    def __init__(self, message: str, *, remedy: Remedy | None = None):
        super().__init__(message)
        self.remedy = remedy


class NotFound(ChatdbError, LookupError):
    """The thread or message a call names does not exist (any more)."""


class InvalidInput(ChatdbError, ValueError):
    """An argument cannot be used as given (type, format, range, content); nothing was sent."""


class Conflict(ChatdbError):
    """The call contradicts what the database holds (a duplicate id with other data)."""


class NoDatabase(ChatdbError):
    """A module-level call could not tell which database to use: none is open, or several are."""


class ConnectionLost(ChatdbError):
    """The connection broke during a call; ``outcome_known`` says whether anything was written.

    When the break came before the commit was sent, nothing was written and
    the call may simply be repeated. When it came during the commit, the
    outcome is unknown: repeat an append with the same message ids (they make
    it idempotent), or read back to find out.
    """

    def __init__(self, message: str, *, outcome_known: bool):
        super().__init__(message)
        self.outcome_known = outcome_known


class ConnectionFailed(ChatdbError):
    """The database could not be reached, or refused the login."""


class TargetReadOnly(ChatdbError):
    """The target is a hot standby or read-only; nothing was tried."""


class LockNotObtained(ChatdbError):
    """Another session held a lock past the wait allowed; retrying later may succeed."""


class DriftDetected(ChatdbError):
    """The live schema is not the one the command expects; nothing was changed.

    ``differences`` holds them (:class:`chatdb.catalog.Difference`), where known.
    """

    def __init__(
        self, message: str, *, differences: Sequence[object] = (), remedy: Remedy | None = None
    ):
        super().__init__(message, remedy=remedy)
        self.differences = list(differences)


class TamperDetected(ChatdbError):
    """Applied migration files changed or vanished since they were applied."""


class HistoryBroken(ChatdbError):
    """The history table has gaps, duplicates or rows out of order; ``problems`` names them."""

    def __init__(self, message: str, *, problems: Sequence[str] = ()):
        super().__init__(message)
        self.problems = list(problems)


class SnapshotUnreadable(ChatdbError):
    """A stored schema snapshot is damaged; nothing that needs it goes on."""


class DataLossRefused(ChatdbError):
    """A rollback would drop data (or the whole schema) and was not confirmed."""


class PrivilegeMissing(ChatdbError):
    """The connected role cannot do every step asked (ownership, CREATE); nothing was written.

    ``shortfall`` (a :class:`chatdb.migrate.privileges.Shortfall`) says what it lacks.
    """

    def __init__(self, message: str, shortfall: object = None):
        super().__init__(message)
        self.shortfall = shortfall


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (PostgreSQL's reason), or its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__
