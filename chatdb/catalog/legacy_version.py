"""The legacy Alembic bookkeeping a chat database may carry: its table and its head.

The legacy backend's Alembic chain ends at :data:`LEGACY_HEAD`; a database
it built records its revision in ``alembic_version``. Both the migration
engine (``chatdb status``, the refusal to migrate an unadopted database)
and the handover read them, so they live below both. The baseline migration
keeps a frozen copy of the head, as every migration file must.
"""

from __future__ import annotations

import peewee as pw

ALEMBIC_TABLE = "alembic_version"
LEGACY_HEAD = "6d8986f38d7b"


def alembic_revisions(database: pw.Database) -> list[str] | None:
    """The rows of ``alembic_version``; None when there is no such table."""
    if database.execute_sql(f"SELECT to_regclass('public.{ALEMBIC_TABLE}')").fetchone()[0] is None:
        return None
    return [row[0] for row in database.execute_sql(f"SELECT version_num FROM {ALEMBIC_TABLE}")]
