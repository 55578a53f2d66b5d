"""The column order the legacy contract fixes: the baseline tables' own columns.

A database built by the legacy backend's Alembic chain has these columns in
this order, and the handover proves it; applications written against it may
rely on that order. Columns added later by chatdb's migrations are not part of
that contract: PostgreSQL appends a column it adds, so a dropped column's
rollback cannot put it back where it was, and catalogs compare such columns
by name only (:mod:`chatdb.catalog.diff`). A frozen copy, as the baseline
migration is (a test proves it matches the baseline's snapshot).
"""

from __future__ import annotations

LEGACY_COLUMNS: dict[str, tuple[str, ...]] = {
    "alembic_version": ("version_num",),
    "complexity_estimation": ("id", "complexity", "model", "reasoning", "message_id"),
    "messages": (
        "message_id",
        "creation_date",
        "content",
        "thread_id",
        "entity",
        "is_complete",
        "search_vector",
    ),
    "threads": (
        "thread_id",
        "vlab_id",
        "project_id",
        "title",
        "creation_date",
        "update_date",
        "user_id",
    ),
    "token_consumption": ("id", "message_id", "type", "task", "count", "model"),
    "tool_calls": ("tool_call_id", "name", "arguments", "validated", "message_id"),
    "tool_selection": ("id", "message_id", "tool_name"),
}


def ordered_columns(table: str, names: list[str]) -> list[str]:
    """Those of ``names`` whose order the legacy contract fixes, in the order given."""
    legacy = LEGACY_COLUMNS.get(table, ())
    return [name for name in names if name in legacy]
