"""Cascade deletes: deleting a thread deletes its messages and everything hanging off them.

The legacy backend deleted children through its ORM; the five foreign keys
keep their names and become ``ON DELETE CASCADE``, so one ``DELETE`` of a
thread (or a message) is enough, whoever sends it.

``atomic = False``: each foreign key is swapped in one short catalog change
(the new constraint is ``NOT VALID``: rows written from then on are checked,
existing rows are not scanned), then validated in a separate statement that
scans the table without blocking writers. Every step reads the catalog first,
so running the migration again after an interruption completes it. Plain
``pw_migrate`` runs the same steps in its transaction.
"""

import peewee as pw
from peewee_migrate import Migrator

from chatdb import operations

atomic = False

FOREIGN_KEYS = (
    ("messages", "thread_id"),
    ("tool_calls", "message_id"),
    ("tool_selection", "message_id"),
    ("token_consumption", "message_id"),
    ("complexity_estimation", "message_id"),
)


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    for table, column in FOREIGN_KEYS:
        operations.set_on_delete(migrator, table, column, "CASCADE")


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    for table, column in reversed(FOREIGN_KEYS):
        operations.set_on_delete(migrator, table, column, None)
