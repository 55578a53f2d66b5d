"""The catalog: read a live schema from ``pg_catalog``, store it, compare two of them.

Every catalog query of chatdb lives in this package. Its parts:
:mod:`~chatdb.catalog.model` (what a catalog holds), :mod:`~chatdb.catalog.reader`
(reading one), :mod:`~chatdb.catalog.diff` (structured differences),
:mod:`~chatdb.catalog.bodies` (the known wordings of functions),
:mod:`~chatdb.catalog.snapshots` (the catalog each migration leaves, stored
beside it) and :mod:`~chatdb.catalog.legacy_version` (the legacy
``alembic_version`` and its head).
"""

from chatdb.catalog.bodies import fingerprint
from chatdb.catalog.diff import Difference, between, diff
from chatdb.catalog.model import NOT_NULL_CHECK_PREFIX, SCHEMA, Catalog, Column, Index
from chatdb.catalog.reader import read_catalog

__all__ = [
    "NOT_NULL_CHECK_PREFIX",
    "SCHEMA",
    "Catalog",
    "Column",
    "Difference",
    "Index",
    "between",
    "diff",
    "fingerprint",
    "read_catalog",
]
