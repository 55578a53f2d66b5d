"""Indexes for finding a vlab's and a project's threads.

A search scoped to a vlab or a project first collects the scope's thread
ids; without these indexes that reads every thread (about 15 ms at 100,000
threads, growing with the table) before a single message is read. With them
the scope costs what its own threads and messages cost, as a user's does.

``atomic = False``: built ``CONCURRENTLY`` by chatdb's runner, as in 003.
"""

import peewee as pw
from peewee_migrate import Migrator

from chatdb import operations

atomic = False

INDEXES = (
    ("threads", "vlab_id"),
    ("threads", "project_id"),
)


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    for table, *columns in INDEXES:
        operations.create_index(migrator, table, *columns)


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    for table, *columns in reversed(INDEXES):
        operations.drop_index(migrator, table, *columns)
