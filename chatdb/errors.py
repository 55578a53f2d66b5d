"""The one exception family: every problem a caller can fix is a :class:`ChatdbError`.

The command line turns it into a single clear line. Its subclasses name the
situations a program may want to tell apart (not found, bad input, retry
later, point at another server, ...); the message alone is for people.
:class:`NotFound` and :class:`InvalidInput` are also ``LookupError`` and
``ValueError``, what the data API raised before they existed.
"""

from __future__ import annotations


class ChatdbError(Exception):
    """A problem the user can fix; its message says what happened and what to do."""


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
    """The live schema is not the one the command expects; nothing was changed."""


class TamperDetected(ChatdbError):
    """Applied migration files changed or vanished since they were applied."""


class DataLossRefused(ChatdbError):
    """A rollback would drop data (or the whole schema) and was not confirmed."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (PostgreSQL's reason), or its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__
