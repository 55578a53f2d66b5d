"""Reading a live schema from ``pg_catalog`` and comparing two of them.

A :class:`Catalog` is everything about the ``public`` schema that decides
whether two databases are interchangeable for the application: enum labels,
columns (order, type, nullability, default), constraints, indexes, triggers
(definition and whether they fire), functions (signature, result, language,
attributes, and a fingerprint of what the body does) and extensions. Dropped
columns are skipped, and so are PostgreSQL 18's ``NOT NULL`` rows in
``pg_constraint`` (nullability is compared per column), so the answer is the
same on PostgreSQL 15 and 18.

A body's fingerprint is the sha256 of its tokens (comments and layout
aside): a reformatted body keeps it, a body that does something else does
not. :mod:`chatdb.drift.bodies` lists the wordings known to stand in for
each other, with their origins.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import peewee as pw

from chatdb.drift.bodies import canonical, fingerprint, nearest, same_body

SCHEMA = "public"

# pg_trigger.tgenabled, in words.
TRIGGER_STATES = {
    "O": "enabled",
    "D": "disabled",
    "R": "enabled on replicas only",
    "A": "enabled always",
}

# Prefix of the temporary check chatdb's safe ``SET NOT NULL`` adds and drops.
NOT_NULL_CHECK_PREFIX = "chatdb_nn_"
_NOT_NULL_CHECK = re.compile(r"CHECK \(\((\w+) IS NOT NULL\)\)(?: NOT VALID)?")


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    not_null: bool
    default: str | None


@dataclass(frozen=True)
class Index:
    table: str
    columns: str
    definition: str
    valid: bool


@dataclass
class Catalog:
    enums: dict[str, list[str]] = field(default_factory=dict)
    tables: dict[str, list[Column]] = field(default_factory=dict)
    constraints: dict[str, dict[str, str]] = field(default_factory=dict)
    indexes: dict[str, Index] = field(default_factory=dict)
    triggers: dict[str, dict[str, str]] = field(default_factory=dict)
    trigger_states: dict[str, dict[str, str]] = field(default_factory=dict)
    functions: dict[str, str] = field(default_factory=dict)
    function_bodies: dict[str, str] = field(default_factory=dict)
    extensions: list[str] = field(default_factory=list)
    # The live source of each body, to show how an unknown one differs; never stored.
    function_sources: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def without(self, *tables: str) -> Catalog:
        """This catalog minus some tables and everything hanging off them."""
        drop = set(tables)
        return Catalog(
            enums=dict(self.enums),
            tables={k: v for k, v in self.tables.items() if k not in drop},
            constraints={k: v for k, v in self.constraints.items() if k not in drop},
            indexes={k: v for k, v in self.indexes.items() if v.table not in drop},
            triggers={k: v for k, v in self.triggers.items() if k not in drop},
            trigger_states={k: v for k, v in self.trigger_states.items() if k not in drop},
            functions=dict(self.functions),
            function_bodies=dict(self.function_bodies),
            extensions=list(self.extensions),
            function_sources=dict(self.function_sources),
        )

    def to_json(self) -> str:
        stored = asdict(self)
        del stored["function_sources"]
        return json.dumps(stored, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Catalog:
        raw: dict[str, Any] = json.loads(text)
        return cls(
            enums=raw["enums"],
            tables={t: [Column(**c) for c in cols] for t, cols in raw["tables"].items()},
            constraints=raw["constraints"],
            indexes={name: Index(**ix) for name, ix in raw["indexes"].items()},
            triggers=raw["triggers"],
            trigger_states=raw["trigger_states"],
            functions=raw["functions"],
            function_bodies=raw["function_bodies"],
            extensions=raw["extensions"],
        )

    @classmethod
    def load(cls, path: Path) -> Catalog:
        return cls.from_json(path.read_text())


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

_EXTENSIONS = "SELECT extname FROM pg_extension ORDER BY extname"


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
    catalog.extensions = [name for (name,) in rows(_EXTENSIONS)]
    return catalog


def between(before: Catalog, after: Catalog, live: Catalog) -> bool:
    """Whether every part of ``live`` is as in ``before`` or as in ``after``.

    That is the state a migration run outside a transaction leaves when it is
    interrupted: some steps done, the rest not, an index it builds
    concurrently left INVALID, a constraint it adds not validated yet, or a
    ``NOT NULL`` set the safe way half done (its temporary check present, the
    column not yet ``NOT NULL``).
    """
    old, new, now = _parts(before), _parts(after), _parts(live)
    checked = _not_null_checks(now)
    for key in old.keys() | new.keys() | now.keys():
        allowed = [old.get(key), new.get(key)]
        if key in checked:
            continue  # the temporary check of a half-done NOT NULL
        if key in new and key in now and key[0] == "index" and not now[key][2]:
            continue  # an interrupted build, which the migration drops and builds again
        if key in new and key[0] == "constraint":
            allowed.append(f"{new[key]} NOT VALID")
        if key[0] == "column" and (key[1], key[2]) in checked.values():
            allowed += [replace(c, not_null=not c.not_null) for c in allowed if c is not None]
        if now.get(key) not in allowed:
            return False
    return True


def _not_null_checks(parts: dict[tuple[str, ...], Any]) -> dict[tuple[str, ...], tuple[str, str]]:
    """The temporary ``CHECK (column IS NOT NULL)`` constraints and the column each covers."""
    found = {}
    for key, definition in parts.items():
        if key[0] == "constraint" and key[2].startswith(NOT_NULL_CHECK_PREFIX):
            match = _NOT_NULL_CHECK.fullmatch(definition)
            if match:
                found[key] = (key[1], match.group(1))
    return found


def _parts(catalog: Catalog) -> dict[tuple[str, ...], Any]:
    """Every named part of a catalog with what it is, for :func:`between`."""
    parts: dict[tuple[str, ...], Any] = {}
    for name, labels in catalog.enums.items():
        parts["enum", name] = tuple(labels)
    for table, columns in catalog.tables.items():
        parts["table", table] = True
        for column in columns:
            parts["column", table, column.name] = column
    for table, named in catalog.constraints.items():
        for name, definition in named.items():
            parts["constraint", table, name] = definition
    for name, index in catalog.indexes.items():
        parts["index", name] = (index.table, index.definition, index.valid)
    for table, named in catalog.triggers.items():
        for name, definition in named.items():
            parts["trigger", table, name] = (definition, catalog.trigger_states[table][name])
    for name, description in catalog.functions.items():
        parts["function", name] = (description, canonical(name, catalog.function_bodies[name]))
    for name in catalog.extensions:
        parts["extension", name] = True
    return parts


def diff(expected: Catalog, actual: Catalog) -> list[str]:
    """Every difference between two catalogs, one readable sentence each."""
    return [
        *_diff_enums(expected.enums, actual.enums),
        *_diff_tables(expected.tables, actual.tables),
        *_diff_named("constraint", expected.constraints, actual.constraints),
        *_diff_indexes(expected.indexes, actual.indexes),
        *_diff_named("trigger", expected.triggers, actual.triggers),
        *_diff_trigger_states(expected.trigger_states, actual.trigger_states),
        *_diff_flat("function", expected.functions, actual.functions),
        *_diff_bodies(expected.function_bodies, actual),
        *_diff_flat(
            "extension",
            dict.fromkeys(expected.extensions, ""),
            dict.fromkeys(actual.extensions, ""),
        ),
    ]


def _diff_enums(expected: dict[str, list[str]], actual: dict[str, list[str]]) -> list[str]:
    out = []
    for name in sorted(expected.keys() | actual.keys()):
        want, have = expected.get(name), actual.get(name)
        if have is None:
            out.append(f"enum type {name} is missing")
        elif want is None:
            out.append(f"unexpected enum type {name} ({', '.join(have)})")
        else:
            out += [f"enum {name}: label {label} is missing" for label in want if label not in have]
            out += [f"enum {name}: unexpected label {label}" for label in have if label not in want]
            if set(want) == set(have) and want != have:
                out.append(
                    f"enum {name}: labels are ordered {', '.join(have)}; expected {', '.join(want)}"
                )
    return out


def _diff_tables(expected: dict[str, list[Column]], actual: dict[str, list[Column]]) -> list[str]:
    out = []
    for table in sorted(expected.keys() | actual.keys()):
        if table not in actual:
            out.append(f"table {table} is missing")
            continue
        if table not in expected:
            out.append(f"unexpected table {table}")
            continue
        want = {c.name: c for c in expected[table]}
        have = {c.name: c for c in actual[table]}
        for column in expected[table]:
            if column.name not in have:
                out.append(f"{table}.{column.name}: column is missing")
        for column in actual[table]:
            if column.name not in want:
                out.append(f"{table}.{column.name}: unexpected column ({column.type})")
                continue
            out += _diff_column(f"{table}.{column.name}", want[column.name], column)
        common_want = [c.name for c in expected[table] if c.name in have]
        common_have = [c.name for c in actual[table] if c.name in want]
        if common_want != common_have:
            out.append(
                f"{table}: columns are in order {', '.join(common_have)}; "
                f"expected {', '.join(common_want)}"
            )
    return out


def _diff_column(where: str, want: Column, have: Column) -> list[str]:
    out = []
    if want.type != have.type:
        out.append(f"{where}: type is {have.type}, expected {want.type}")
    if want.not_null != have.not_null:
        state = {True: "NOT NULL", False: "nullable"}
        out.append(f"{where}: is {state[have.not_null]}, expected {state[want.not_null]}")
    if want.default != have.default:
        out.append(
            f"{where}: default is {have.default or 'none'}, expected {want.default or 'none'}"
        )
    return out


def _diff_named(
    kind: str, expected: dict[str, dict[str, str]], actual: dict[str, dict[str, str]]
) -> list[str]:
    out = []
    for table in sorted(expected.keys() | actual.keys()):
        want, have = expected.get(table, {}), actual.get(table, {})
        for name in sorted(want.keys() | have.keys()):
            if name not in have:
                out.append(f"{table}: {kind} {name} is missing ({want[name]})")
            elif name not in want:
                out.append(f"{table}: unexpected {kind} {name} ({have[name]})")
            elif want[name] != have[name]:
                out.append(f"{table}: {kind} {name} is {have[name]}; expected {want[name]}")
    return out


def _diff_indexes(expected: dict[str, Index], actual: dict[str, Index]) -> list[str]:
    out = []
    for name in sorted(expected.keys() | actual.keys()):
        want, have = expected.get(name), actual.get(name)
        if have is None:
            assert want is not None
            out.append(f"{want.table}.{want.columns}: index {name} is missing")
        elif want is None:
            out.append(f"{have.table}.{have.columns}: unexpected index {name} ({have.definition})")
        else:
            if want.definition != have.definition:
                out.append(
                    f"{have.table}.{have.columns}: index {name} is {have.definition}; "
                    f"expected {want.definition}"
                )
            if want.valid and not have.valid:
                out.append(
                    f"{have.table}.{have.columns}: index {name} is INVALID "
                    "(an interrupted concurrent build); drop it and build it again"
                )
    return out


def _diff_flat(kind: str, expected: dict[str, str], actual: dict[str, str]) -> list[str]:
    out = []
    for name in sorted(expected.keys() | actual.keys()):
        if name not in actual:
            out.append(f"{kind} {name} is missing")
        elif name not in expected:
            out.append(f"unexpected {kind} {name}")
        elif expected[name] != actual[name]:
            out.append(f"{kind} {name}: {actual[name]}; expected {expected[name]}")
    return out


def _diff_trigger_states(
    expected: dict[str, dict[str, str]], actual: dict[str, dict[str, str]]
) -> list[str]:
    return [
        f"{table}: trigger {name} is {have}; expected {want}"
        for table, wanted in sorted(expected.items())
        for name, want in sorted(wanted.items())
        if (have := actual.get(table, {}).get(name)) is not None and have != want
    ]


def _diff_bodies(expected: dict[str, str], actual: Catalog) -> list[str]:
    out = []
    for name, want in sorted(expected.items()):
        have = actual.function_bodies.get(name)
        if have is None or same_body(name, want, have):
            continue
        said = f"function {name}: its body is not one chatdb knows (fingerprint {have})"
        source = actual.function_sources.get(name)
        away = nearest(name, source, want) if source is not None else None
        if away is None:
            out.append(f"{said}; expected fingerprint {want}")
            continue
        out.append(
            f"{said}; nearest is {away.body.label} ({away.body.origin}), from which its "
            f"statement {away.statement} departs at {away.token_found or 'its end'!r} instead "
            f"of {away.token_expected or 'its end'!r}: `{away.found}` where `{away.expected}` "
            "is expected; `chatdb repair search-function` puts the known body back"
        )
    return out
