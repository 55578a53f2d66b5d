"""Choosing the database: ``--database``, then ``DATABASE_URL``, then the embedded server.

Commands name their target before touching it (:meth:`Target.describe`), so a
release step that forgot ``DATABASE_URL`` cannot quietly migrate a database
nobody meant. ``CHATDB_EMBEDDED=0`` turns the embedded fallback off: with no
URL, choosing fails before any server starts or any directory is created.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from chatdb.db.urls import connect_params
from chatdb.errors import ChatdbError

ENV_VAR = "DATABASE_URL"
EMBEDDED_ENV = "CHATDB_EMBEDDED"
_ON, _OFF = ("", "1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class Target:
    """A chosen database, not yet connected to (nor, if embedded, started)."""

    explicit_url: str | None  # None: the embedded server
    source: str

    def url(self) -> str:
        """The URL to connect to; starts the embedded server if that is the target."""
        if self.explicit_url is not None:
            return self.explicit_url
        from chatdb.db import embedded  # only the fallback starts (or imports) the server

        return embedded.EmbeddedServer.default().ensure_running().url()

    def describe(self) -> str:
        """One line naming server and database, never the password."""
        if self.explicit_url is None:
            from chatdb.db import embedded

            home = embedded.default_home().absolute()
            return (
                f"target: database {embedded.DATABASE_NAME} on the embedded local server at "
                f"{home} ({self.source})"
            )
        params = connect_params(self.explicit_url)
        host = params.get("host") or os.environ.get("PGHOST") or "the default local socket"
        port = params.get("port") or os.environ.get("PGPORT") or "5432"
        user = params.get("user") or os.environ.get("PGUSER")
        name = params.get("dbname") or user or os.environ.get("PGDATABASE") or "(default)"
        as_user = f" as {user}" if user else ""
        return f"target: database {name} on {host}:{port}{as_user} (from {self.source})"


def embedded_allowed() -> bool:
    """False when ``CHATDB_EMBEDDED`` turns the embedded fallback off."""
    value = os.environ.get(EMBEDDED_ENV, "").strip().lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    raise ChatdbError(f"{EMBEDDED_ENV}={value}: expected 0 (no embedded server) or 1")


def choose(explicit: str | None = None) -> Target:
    """The database chatdb should use: explicit, then ``DATABASE_URL``, then embedded."""
    if explicit:
        return Target(explicit, "--database")
    if os.environ.get(ENV_VAR):
        return Target(os.environ[ENV_VAR], ENV_VAR)
    if not embedded_allowed():
        raise ChatdbError(
            f"no database given: set {ENV_VAR} or pass --database "
            f"({EMBEDDED_ENV}=0 turns the embedded local server off)"
        )
    return Target(None, f"no --database or {ENV_VAR} given")


def resolve_url(explicit: str | None = None) -> str:
    """The URL chatdb should use: explicit, then ``DATABASE_URL``, then embedded."""
    return choose(explicit).url()
