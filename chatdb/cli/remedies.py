"""A refusal's way on, in the words of the front end that ran: its own options only.

The engine raises errors that carry a :class:`~chatdb.errors.Remedy`
rather than naming an option; ``chatdb`` and plain ``pw_migrate`` have
different ones (``--yes`` against an environment variable), so each front
end appends its own wording here.
"""

from __future__ import annotations

from chatdb.errors import ChatdbError, Remedy

CHATDB = {
    Remedy.CONFIRM_DATA_LOSS: "take a backup and pass --yes (or set CHATDB_ALLOW_DATA_LOSS=1) "
    "if that is what you want",
    Remedy.ACCEPT_CHANGED: "or pass --accept-changed to accept them as they are now",
    Remedy.IGNORE_DRIFT: "or pass --ignore-drift to go on anyway",
    Remedy.WAIT_LONGER: "or wait longer with --lock-wait SECONDS",
}
PW_MIGRATE = {
    Remedy.CONFIRM_DATA_LOSS: "take a backup and set CHATDB_ALLOW_DATA_LOSS=1 if that is what "
    "you want",
    Remedy.ACCEPT_CHANGED: "or accept them as they are now with `chatdb migrate --accept-changed`",
    Remedy.IGNORE_DRIFT: "or go on anyway with `chatdb migrate --ignore-drift`",
    Remedy.WAIT_LONGER: "or wait longer with CHATDB_LOCK_WAIT=SECONDS",
}


def words(exc: ChatdbError, wording: dict[Remedy, str]) -> str:
    """The error's message, with its remedy (its own, or a cause's) in ``wording``."""
    cause: BaseException | None = exc
    while cause is not None:
        remedy = getattr(cause, "remedy", None)
        if remedy is not None:
            return f"{exc}; {wording[remedy]}"
        cause = cause.__cause__
    return str(exc)
