"""An index for every foreign key and listing path.

Without them, deleting a thread or a message scans every child table to find
(or check) the rows pointing at it, and listing a thread's messages or a
user's threads sorts the whole table. Each child table gets an index leading
with its ``message_id``; ``messages (thread_id, creation_date)`` serves both
the foreign key and a thread's messages in order; ``threads (user_id,
update_date DESC)`` lists a user's threads newest first.

``atomic = False``: chatdb's runner builds them ``CONCURRENTLY``, one
statement at a time, so writers are never blocked; a build interrupted
half-way leaves an INVALID index that running the migration again drops and
rebuilds. Plain ``pw_migrate`` runs the same steps in its transaction, as
ordinary ``CREATE INDEX`` (correct, but blocking writes while it builds).
"""

import peewee as pw
from peewee_migrate import Migrator

from chatdb import operations

atomic = False

INDEXES = (
    ("messages", "thread_id", "creation_date"),
    ("tool_calls", "message_id"),
    ("tool_selection", "message_id"),
    ("token_consumption", "message_id"),
    ("complexity_estimation", "message_id"),
    ("threads", "user_id", "update_date DESC"),
)


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    for table, *columns in INDEXES:
        operations.create_index(migrator, table, *columns)


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    for table, *columns in reversed(INDEXES):
        operations.drop_index(migrator, table, *columns)
