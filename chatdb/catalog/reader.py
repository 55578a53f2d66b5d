"""Reading a live schema's :class:`~chatdb.catalog.model.Catalog` from ``pg_catalog``.

Only the one schema is read (and pg_catalog's extensions): another schema's
tables, types, functions and extensions, an application's own, never count.
Dropped columns are skipped, and so are PostgreSQL 18's ``NOT NULL`` rows in
``pg_constraint`` (nullability is compared per column), so the answer is the
same on PostgreSQL 15 and 18. Only the catalog is read, never a row of
a table, so the cost does not grow with the data.
"""

from __future__ import annotations

from typing import Any

import peewee as pw

from chatdb.catalog.bodies import fingerprint
from chatdb.catalog.model import SCHEMA, TRIGGER_STATES, Catalog, Column, Index

_ENUMS = """
SELECT t.typname, array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
FROM pg_type t
JOIN pg_namespace n ON n.oid = t.typnamespace
JOIN pg_enum e ON e.enumtypid = t.oid
WHERE n.nspname = %s
GROUP BY t.typname
"""

_COLUMNS = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid
LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY c.relname, a.attnum
"""

_CONSTRAINTS = """
SELECT c.relname, k.conname, pg_get_constraintdef(k.oid)
FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND k.contype <> 'n'
"""

_INDEXES = """
SELECT i.relname, t.relname,
       (SELECT string_agg(a.attname, ',' ORDER BY k.ord)
          FROM unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum),
       pg_get_indexdef(i.oid), x.indisvalid
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = %s
"""

_TRIGGERS = """
SELECT c.relname, g.tgname, pg_get_triggerdef(g.oid), g.tgenabled
FROM pg_trigger g
JOIN pg_class c ON c.oid = g.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND NOT g.tgisinternal
"""

_FUNCTIONS = """
SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       'returns ' || pg_get_function_result(p.oid) || ' language ' || l.lanname
         || CASE p.provolatile WHEN 'i' THEN ' immutable' WHEN 's' THEN ' stable' ELSE '' END
         || CASE WHEN p.proisstrict THEN ' strict' ELSE '' END
         || CASE WHEN p.prosecdef THEN ' security definer' ELSE '' END
         || coalesce(' set ' || array_to_string(p.proconfig, ', '), ''),
       p.prosrc
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
JOIN pg_language l ON l.oid = p.prolang
WHERE n.nspname = %s
"""

# Extensions of this schema or of pg_catalog (plpgsql): another schema's, an application's
# own (docs/MIGRATION_WORKFLOW.md), are none of this schema's business.
_EXTENSIONS = """
SELECT e.extname
FROM pg_extension e
JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE n.nspname IN ('pg_catalog', %s)
ORDER BY e.extname
"""


def read_catalog(database: pw.Database, schema: str = SCHEMA) -> Catalog:
    """Snapshot the schema's catalog. Reads ``pg_catalog`` only, never a table's rows."""

    def rows(sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return list(database.execute_sql(sql, params or None).fetchall())

    catalog = Catalog()
    for name, labels in rows(_ENUMS, schema):
        catalog.enums[name] = list(labels)
    for table, column, type_, not_null, default in rows(_COLUMNS, schema):
        catalog.tables.setdefault(table, []).append(Column(column, type_, not_null, default))
    for table, name, definition in rows(_CONSTRAINTS, schema):
        catalog.constraints.setdefault(table, {})[name] = definition
    for name, table, columns, definition, valid in rows(_INDEXES, schema):
        catalog.indexes[name] = Index(table, columns or "", definition, valid)
    for table, name, definition, enabled in rows(_TRIGGERS, schema):
        catalog.triggers.setdefault(table, {})[name] = definition
        catalog.trigger_states.setdefault(table, {})[name] = TRIGGER_STATES[enabled]
    for signature, description, source in rows(_FUNCTIONS, schema):
        catalog.functions[signature] = description
        catalog.function_bodies[signature] = fingerprint(source)
        catalog.function_sources[signature] = source
    catalog.extensions = [name for (name,) in rows(_EXTENSIONS, schema)]
    return catalog
