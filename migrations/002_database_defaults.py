"""Database-side defaults: random uuid keys, ``now()`` timestamps, a default thread title.

The legacy backend filled every value in Python, so a row written by anything
else (SQL, another service) needed all of them. With these defaults a plain
``INSERT INTO threads (user_id) VALUES (...)`` works.

Setting a default is a catalog change only (no row is read or rewritten).
``atomic = False``: one ``ALTER TABLE`` per table, each its own short
transaction, so the migration never holds one table's lock while it waits for
another's. In a single transaction it would deadlock with a writer that holds
``messages`` and waits for ``threads`` (the foreign key check of an insert).
Each statement can simply run again, so a re-run after an interruption
completes it.
"""

import peewee as pw
from peewee_migrate import Migrator

from chatdb import operations

atomic = False

DEFAULTS = {
    "threads": {
        "thread_id": "gen_random_uuid()",
        "title": "'New chat'",
        "creation_date": "now()",
        "update_date": "now()",
    },
    "messages": {"message_id": "gen_random_uuid()", "creation_date": "now()"},
    "tool_selection": {"id": "gen_random_uuid()"},
    "token_consumption": {"id": "gen_random_uuid()"},
    "complexity_estimation": {"id": "gen_random_uuid()"},
}


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    for table, defaults in DEFAULTS.items():
        operations.set_defaults(migrator, table, defaults)


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    for table, defaults in reversed(DEFAULTS.items()):
        operations.drop_defaults(migrator, table, list(defaults))
