"""The public migration API: what migration files import, stable for ever.

Migration files say ``from chatdb import operations``, and every applied
file's checksum is recorded, so this import path and each operation's SQL
never change (tests pin both). The implementation lives in
:mod:`chatdb.migrate.operations`; :mod:`chatdb.fields` is the other half
(the column types migration files declare).
"""

from chatdb.migrate.operations import (
    create_index,
    drop_defaults,
    drop_index,
    index_name,
    index_validity,
    set_defaults,
    set_on_delete,
)

__all__ = [
    "create_index",
    "drop_defaults",
    "drop_index",
    "index_name",
    "index_validity",
    "set_defaults",
    "set_on_delete",
]
