"""The public migration API: what migration files import, stable for ever.

Migration files say ``from chatdb import operations``, and every applied
file's checksum is recorded, so this import path and each operation's SQL
never change (tests pin both). The implementation lives in
:mod:`chatdb.migrate.operations`; :mod:`chatdb.fields` is the other half
(the column types migration files declare).
"""

from chatdb.migrate.online import backfill, change_column_type
from chatdb.migrate.operations import (
    add_column,
    add_constraint,
    add_enum_label,
    add_index,
    create_enum,
    create_index,
    create_table,
    drop_column,
    drop_constraint,
    drop_defaults,
    drop_enum,
    drop_index,
    drop_not_null,
    drop_table,
    guard_data_loss,
    index_name,
    index_validity,
    remove_enum_label,
    remove_enum_labels,
    remove_index,
    rename_column,
    rename_constraint,
    rename_enum_label,
    rename_index,
    rename_table,
    replace_constraint,
    set_column_default,
    set_column_type,
    set_defaults,
    set_not_null,
    set_on_delete,
)
from chatdb.migrate.routines import create_function, create_trigger, drop_function, drop_trigger

__all__ = [
    "add_column",
    "add_constraint",
    "add_enum_label",
    "add_index",
    "backfill",
    "change_column_type",
    "create_enum",
    "create_function",
    "create_index",
    "create_table",
    "create_trigger",
    "drop_column",
    "drop_constraint",
    "drop_defaults",
    "drop_enum",
    "drop_function",
    "drop_index",
    "drop_not_null",
    "drop_table",
    "drop_trigger",
    "guard_data_loss",
    "index_name",
    "index_validity",
    "remove_enum_label",
    "remove_enum_labels",
    "remove_index",
    "rename_column",
    "rename_constraint",
    "rename_enum_label",
    "rename_index",
    "rename_table",
    "replace_constraint",
    "set_column_default",
    "set_column_type",
    "set_defaults",
    "set_not_null",
    "set_on_delete",
]
