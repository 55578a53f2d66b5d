"""What a migration step overrides of the settings a role or database may impose.

A long index build or validation must not be cancelled half-way
(``statement_timeout``, and on PostgreSQL 17+ ``transaction_timeout``, are
turned off), and a step waiting for a table lock must give up and retry
rather than queue application traffic behind it (``lock_timeout``). Every
runner's step (chatdb's executor, the handover's transactions) takes these
statements from here, so the list cannot differ between them.
"""

from __future__ import annotations

# A setting only PostgreSQL 17+ knows: set through pg_settings, a no-op before.
_TRANSACTION_TIMEOUT = "FROM pg_settings WHERE name = 'transaction_timeout'"


def overrides(lock_timeout: float, *, local: bool) -> list[str]:
    """A step's values, for its transaction (``SET LOCAL``) or, ``local=False``, its session."""
    scope = "SET LOCAL" if local else "SET"
    return [
        f"{scope} lock_timeout = '{int(lock_timeout * 1000)}ms'",
        f"{scope} statement_timeout = 0",
        f"SELECT set_config(name, '0', {'true' if local else 'false'}) {_TRANSACTION_TIMEOUT}",
    ]


# After a step run outside a transaction: the session's own values again.
RESETS = [
    "RESET lock_timeout",
    "RESET statement_timeout",
    f"SELECT set_config(name, reset_val, false) {_TRANSACTION_TIMEOUT}",
]
