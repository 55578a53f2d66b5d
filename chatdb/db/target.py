"""Choosing the database: an explicit URL (``--database``), ``DATABASE_URL``, then embedded."""

from __future__ import annotations

import os

ENV_VAR = "DATABASE_URL"


def resolve_url(explicit: str | None = None) -> str:
    """The URL chatdb should use: explicit, then ``DATABASE_URL``, then embedded."""
    if explicit:
        return explicit
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        return from_env
    from chatdb.db import embedded

    return embedded.EmbeddedServer.default().ensure_running().url()
