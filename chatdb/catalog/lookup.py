"""Single facts about the live schema, read where a step or a guard needs one.

The migration operations read the catalog before they act (so a step run
again after an interruption does only what is missing), and the data-loss
guards ask whether what they would drop holds anything. Each question is
asked here, once, for all of them; :mod:`chatdb.catalog.reader` reads a
whole catalog at once.
"""

from __future__ import annotations

import peewee as pw

from chatdb.catalog.model import SCHEMA


def _regclass(table: str) -> str:
    return f"{SCHEMA}.{quote(table)}"


def quote(identifier: str) -> str:
    """A double-quoted identifier: safe for any name PostgreSQL allows."""
    return '"' + identifier.replace('"', '""') + '"'


def table_exists(database: pw.Database, table: str) -> bool:
    row = database.execute_sql("SELECT to_regclass(%s)", (_regclass(table),)).fetchone()
    return row[0] is not None


def pages(database: pw.Database, table: str) -> int | None:
    """How many pages the table's heap has now; None when there is no such table."""
    row = database.execute_sql(
        "SELECT pg_relation_size(to_regclass(%s)) / current_setting('block_size')::int",
        (_regclass(table),),
    ).fetchone()
    return None if row[0] is None else int(row[0])


def column(database: pw.Database, table: str, name: str) -> tuple[str, bool] | None:
    """(type, NOT NULL) of a live column; None when there is none."""
    row = database.execute_sql(
        "SELECT format_type(atttypid, atttypmod), attnotnull FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attname = %s AND attnum > 0 AND NOT attisdropped",
        (_regclass(table), name),
    ).fetchone()
    return None if row is None else (row[0], bool(row[1]))


def enum_labels(database: pw.Database, name: str) -> list[str] | None:
    """The labels of an enum type, in order; None when there is no such type."""
    row = database.execute_sql(
        "SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_type t "
        "LEFT JOIN pg_enum e ON e.enumtypid = t.oid "
        "WHERE t.typname = %s AND t.typnamespace = %s::regnamespace GROUP BY t.oid",
        (name, SCHEMA),
    ).fetchone()
    return None if row is None else [label for label in row[0] if label is not None]


def plpgsql_functions(database: pw.Database) -> list[tuple[str, float]]:
    """(signature, cost) of the schema's PL/pgSQL functions, by signature."""
    rows = database.execute_sql(
        "SELECT p.oid::regprocedure::text, p.procost FROM pg_proc p "
        "JOIN pg_language l ON l.oid = p.prolang "
        "WHERE p.pronamespace = %s::regnamespace AND l.lanname = 'plpgsql' ORDER BY 1",
        (SCHEMA,),
    ).fetchall()
    return [(signature, float(cost)) for signature, cost in rows]


def constraint(database: pw.Database, table: str, name: str) -> str | None:
    """A constraint's definition as ``pg_get_constraintdef`` spells it; None when absent."""
    row = database.execute_sql(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = to_regclass(%s) AND conname = %s",
        (_regclass(table), name),
    ).fetchone()
    return None if row is None else row[0]


def index_validity(database: pw.Database, name: str) -> bool | None:
    """True for a usable index, False for an INVALID leftover, None when there is none."""
    row = database.execute_sql(
        "SELECT x.indisvalid FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
        "WHERE c.relname = %s AND c.relnamespace = %s::regnamespace",
        (name, SCHEMA),
    ).fetchone()
    return None if row is None else bool(row[0])


def foreign_key(database: pw.Database, table: str, name: str) -> tuple[str, str] | None:
    """(constraint name, ``confdeltype``) of the one-column foreign key on ``table.name``."""
    row = database.execute_sql(
        """
        SELECT k.conname, k.confdeltype
        FROM pg_constraint k
        JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
        WHERE k.contype = 'f' AND k.conrelid = %s::regclass AND a.attname = %s
          AND cardinality(k.conkey) = 1
        """,
        (_regclass(table), name),
    ).fetchone()
    return None if row is None else (row[0], row[1])


def primary_key(database: pw.Database, table: str) -> list[str]:
    """The primary key's columns, in key order (empty: none)."""
    return [
        name
        for (name,) in database.execute_sql(
            "SELECT a.attname FROM pg_index x JOIN pg_attribute a ON a.attrelid = x.indrelid "
            "AND a.attnum = ANY (x.indkey) WHERE x.indrelid = to_regclass(%s) AND x.indisprimary "
            "ORDER BY array_position(x.indkey, a.attnum)",
            (_regclass(table),),
        ).fetchall()
    ]


def tables(database: pw.Database) -> list[str]:
    """The schema's tables, by name."""
    rows = database.execute_sql(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename", (SCHEMA,)
    ).fetchall()
    return [name for (name,) in rows]


def holds_no_tables(database: pw.Database, but: str) -> bool:
    """No table or view outside the system schemas, ``but`` aside (any schema counts)."""
    return not database.execute_sql(
        """
        SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND c.relname <> %s
          AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
        LIMIT 1
        """,
        (but,),
    ).fetchone()


def holds_data(database: pw.Database, table: str, name: str | None = None) -> bool:
    """Whether a live table has rows (or its column a non-NULL value); False if it is absent."""
    if (column(database, table, name) if name else table_exists(database, table)) in (None, False):
        return False
    where = f" WHERE {quote(name)} IS NOT NULL" if name else ""
    query = f"SELECT EXISTS (SELECT 1 FROM {_regclass(table)}{where})"
    return bool(database.execute_sql(query).fetchone()[0])


# Owners of the named tables, enum types and functions the role cannot act as.
_NOT_OWNED = """
SELECT 'TABLE', c.relname, pg_get_userbyid(c.relowner)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND c.relname = ANY(%(tables)s)
  AND NOT pg_has_role(current_user, c.relowner, 'USAGE')
UNION ALL
SELECT 'TYPE', t.typname, pg_get_userbyid(t.typowner)
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = %(schema)s AND t.typtype = 'e' AND t.typname = ANY(%(types)s)
  AND NOT pg_has_role(current_user, t.typowner, 'USAGE')
UNION ALL
SELECT 'FUNCTION', p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       pg_get_userbyid(p.proowner)
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = %(schema)s
  AND p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' = ANY(%(functions)s)
  AND NOT pg_has_role(current_user, p.proowner, 'USAGE')
ORDER BY 1, 2
"""


def not_owned(
    database: pw.Database, tables: list[str], types: list[str], functions: list[str]
) -> list[tuple[str, str, str]]:
    """(kind, name, owner) of each named table, enum type and function the role cannot act as."""
    params = {"schema": SCHEMA, "tables": tables, "types": types, "functions": functions}
    return [tuple(row) for row in database.execute_sql(_NOT_OWNED, params).fetchall()]


def role_may_create(database: pw.Database) -> tuple[str, bool]:
    """The connected role, and whether it may create objects in the schema."""
    role, may = database.execute_sql(
        "SELECT current_user, has_schema_privilege(%s, 'CREATE')", (SCHEMA,)
    ).fetchone()
    return role, bool(may)


# What depends on one column, other than its default and its own NOT NULL (PostgreSQL 18
# records that as a constraint), and the sync trigger of an online type change.
_COLUMN_DEPENDENTS = """
SELECT pg_describe_object(d.classid, d.objid, d.objsubid)
FROM pg_depend d
JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = to_regclass(%s) AND a.attname = %s
  AND d.classid <> 'pg_attrdef'::regclass
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k
                  WHERE d.classid = 'pg_constraint'::regclass AND k.oid = d.objid
                    AND k.contype = 'n')
  AND NOT EXISTS (SELECT 1 FROM pg_trigger g
                  WHERE d.classid = 'pg_trigger'::regclass AND g.oid = d.objid
                    AND g.tgname LIKE %s)
ORDER BY 1
"""


def column_dependents(database: pw.Database, table: str, name: str, sync_prefix: str) -> list[str]:
    """What would go with a column dropped: indexes, constraints, triggers, views, sequences.

    ``sync_prefix`` names the triggers not counted (an online type change's own).
    """
    rows = database.execute_sql(
        _COLUMN_DEPENDENTS, (_regclass(table), name, sync_prefix.replace("_", r"\_") + "%")
    ).fetchall()
    return [description for (description,) in rows]


def estimated_rows(database: pw.Database, table: str) -> int:
    """The planner's row count of a table (no scan); 0 before its first ANALYZE."""
    row = database.execute_sql(
        "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = to_regclass(%s)",
        (_regclass(table),),
    ).fetchone()
    return 0 if row is None else int(row[0])


def trigger(database: pw.Database, table: str, name: str) -> str | None:
    """A trigger's definition as ``pg_get_triggerdef`` spells it; None when absent."""
    row = database.execute_sql(
        "SELECT pg_get_triggerdef(oid) FROM pg_trigger "
        "WHERE tgrelid = to_regclass(%s) AND tgname = %s AND NOT tgisinternal",
        (_regclass(table), name),
    ).fetchone()
    return None if row is None else row[0]


def function_source(database: pw.Database, signature: str) -> str | None:
    """The body (``prosrc``) of ``name(argument types)`` in the schema; None when absent."""
    row = database.execute_sql(
        "SELECT prosrc FROM pg_proc WHERE oid = to_regprocedure(%s)", (f"{SCHEMA}.{signature}",)
    ).fetchone()
    return None if row is None else row[0]
