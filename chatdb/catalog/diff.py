"""Comparing two catalogs: every difference as a :class:`Difference`, and "half way between".

A difference is data (its kind, the object, what was expected, what was
found) with a sentence a DBA reads; commands list them, JSON output carries
their fields, and the handover, drift guards and ``chatdb create`` decide
on them. Function bodies compare by fingerprint, where the known wordings
of a function (:mod:`chatdb.catalog.bodies`) count as one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from chatdb.catalog.bodies import canonical, nearest, same_body
from chatdb.catalog.model import (
    NOT_NULL_CHECK,
    NOT_NULL_CHECK_PREFIX,
    ONLINE_COLUMN_PREFIX,
    ONLINE_SYNC_PREFIX,
    Catalog,
    Column,
    Index,
)


@dataclass(frozen=True)
class Difference:
    """One way two catalogs differ.

    ``kind`` is what differs (``table``, ``column``, ``column order``,
    ``enum``, ``enum label``, ``constraint``, ``index``, ``trigger``,
    ``trigger state``, ``function``, ``function body``, ``extension``);
    ``object`` names it; ``expected`` and ``found`` are their values, None
    where the object is missing on that side. ``sentence`` says it in words.
    """

    kind: str
    object: str
    expected: str | None
    found: str | None
    sentence: str

    def __str__(self) -> str:
        return self.sentence

    def as_dict(self) -> dict[str, str | None]:
        return {
            "kind": self.kind,
            "object": self.object,
            "expected": self.expected,
            "found": self.found,
            "message": self.sentence,
        }


def between(before: Catalog, after: Catalog, live: Catalog) -> bool:
    """Whether every part of ``live`` is as in ``before`` or as in ``after``.

    That is the state a migration run outside a transaction leaves when it is
    interrupted, applied or rolled back: some steps done, the rest not, an
    index it builds concurrently left INVALID, a constraint it adds (or puts
    back) not validated yet, or a ``NOT NULL`` set the safe way half done (its
    temporary check present, the column not yet ``NOT NULL``), or an online
    type change stopped before its swap (its new column, sync function and
    trigger present: :mod:`chatdb.migrate.online`).
    """
    old, new = _parts(before), _parts(after)
    now = _parts(without_accelerators(before, without_accelerators(after, live)))
    checked = _not_null_checks(now)
    for key in old.keys() | new.keys() | now.keys():
        allowed = [old.get(key), new.get(key)]
        if key in checked:
            continue  # the temporary check of a half-done NOT NULL
        if _online_leftover(key) and key not in old and key not in new:
            continue  # the new column, function or trigger of an online type change
        if (key in new or key in old) and key in now and key[0] == "index" and not now[key][2]:
            continue  # an interrupted build, which the migration drops and builds again
        if key[0] == "constraint":
            allowed += [f"{side[key]} NOT VALID" for side in (old, new) if key in side]
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
            match = NOT_NULL_CHECK.fullmatch(definition)
            if match:
                found[key] = (key[1], match.group(1))
    return found


def _online_leftover(key: tuple[str, ...]) -> bool:
    if key[0] == "column":
        return key[2].startswith(ONLINE_COLUMN_PREFIX)
    return key[0] in ("trigger", "function") and key[-1].startswith(ONLINE_SYNC_PREFIX)


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


# Optional accelerators: search uses them when present and never needs them
# (docs/DATA_API.md#exact-search), so a schema with them has not drifted.
OPTIONAL_EXTENSIONS = ("rum",)
_ACCELERATOR_INDEX = re.compile(r"CREATE INDEX \S+ ON \S*messages USING rum \(search_vector\)")


def without_accelerators(expected: Catalog, actual: Catalog) -> Catalog:
    """``actual`` less the optional accelerators ``expected`` does not have."""
    return replace(
        actual,
        extensions=[
            name
            for name in actual.extensions
            if name in expected.extensions or name not in OPTIONAL_EXTENSIONS
        ],
        indexes={
            name: index
            for name, index in actual.indexes.items()
            if name in expected.indexes or not _ACCELERATOR_INDEX.fullmatch(index.definition)
        },
    )


def diff(expected: Catalog, actual: Catalog, *, column_order: bool = False) -> list[Difference]:
    """Every difference between two catalogs (an empty list: interchangeable).

    Columns compare by name: PostgreSQL appends every column it makes, so a
    column made again (an online type change swaps in a new one, in both
    directions) sits last, and where it sits is not part of the contract.
    ``column_order`` compares their order too: the legacy contract, where
    the handover takes over a database the legacy backend made, fixes it.
    The optional accelerators (:func:`without_accelerators`) are no difference.
    """
    actual = without_accelerators(expected, actual)
    return [
        *_diff_enums(expected.enums, actual.enums),
        *_diff_tables(expected.tables, actual.tables, column_order),
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


def _diff_enums(expected: dict[str, list[str]], actual: dict[str, list[str]]) -> list[Difference]:
    out = []
    for name in sorted(expected.keys() | actual.keys()):
        want, have = expected.get(name), actual.get(name)
        if have is None:
            assert want is not None
            out.append(
                Difference("enum", name, ", ".join(want), None, f"enum type {name} is missing")
            )
        elif want is None:
            labels = ", ".join(have)
            out.append(
                Difference("enum", name, None, labels, f"unexpected enum type {name} ({labels})")
            )
        else:
            out += [
                Difference("enum label", f"{name}.{label}", label, None,
                           f"enum {name}: label {label} is missing")
                for label in want
                if label not in have
            ]  # fmt: skip
            out += [
                Difference("enum label", f"{name}.{label}", None, label,
                           f"enum {name}: unexpected label {label}")
                for label in have
                if label not in want
            ]  # fmt: skip
            if set(want) == set(have) and want != have:
                order, wanted = ", ".join(have), ", ".join(want)
                out.append(
                    Difference("enum", name, wanted, order,
                               f"enum {name}: labels are ordered {order}; expected {wanted}")
                )  # fmt: skip
    return out


def _diff_tables(
    expected: dict[str, list[Column]], actual: dict[str, list[Column]], column_order: bool
) -> list[Difference]:
    out = []
    for table in sorted(expected.keys() | actual.keys()):
        if table not in actual:
            out.append(Difference("table", table, table, None, f"table {table} is missing"))
            continue
        if table not in expected:
            out.append(Difference("table", table, None, table, f"unexpected table {table}"))
            continue
        want = {c.name: c for c in expected[table]}
        have = {c.name: c for c in actual[table]}
        for column in expected[table]:
            if column.name not in have:
                where = f"{table}.{column.name}"
                out.append(
                    Difference("column", where, column.type, None, f"{where}: column is missing")
                )
        for column in actual[table]:
            where = f"{table}.{column.name}"
            if column.name not in want:
                out.append(Difference("column", where, None, column.type,
                                      f"{where}: unexpected column ({column.type})"))  # fmt: skip
                continue
            out += _diff_column(where, want[column.name], column)
        common_want = [c.name for c in expected[table] if c.name in have]
        common_have = [c.name for c in actual[table] if c.name in want]
        if column_order and common_want != common_have:
            found, wanted = ", ".join(common_have), ", ".join(common_want)
            out.append(
                Difference("column order", table, wanted, found,
                           f"{table}: columns are in order {found}; expected {wanted}")
            )  # fmt: skip
    return out


def _diff_column(where: str, want: Column, have: Column) -> list[Difference]:
    out = []
    if want.type != have.type:
        out.append(Difference("column type", where, want.type, have.type,
                              f"{where}: type is {have.type}, expected {want.type}"))  # fmt: skip
    if want.not_null != have.not_null:
        state = {True: "NOT NULL", False: "nullable"}
        out.append(
            Difference("column nullability", where, state[want.not_null], state[have.not_null],
                       f"{where}: is {state[have.not_null]}, expected {state[want.not_null]}")
        )  # fmt: skip
    if want.default != have.default:
        out.append(
            Difference("column default", where, want.default, have.default,
                       f"{where}: default is {have.default or 'none'}, "
                       f"expected {want.default or 'none'}")
        )  # fmt: skip
    return out


def _diff_named(
    kind: str, expected: dict[str, dict[str, str]], actual: dict[str, dict[str, str]]
) -> list[Difference]:
    out = []
    for table in sorted(expected.keys() | actual.keys()):
        want, have = expected.get(table, {}), actual.get(table, {})
        for name in sorted(want.keys() | have.keys()):
            where = f"{table}.{name}"
            if name not in have:
                sentence = f"{table}: {kind} {name} is missing ({want[name]})"
                out.append(Difference(kind, where, want[name], None, sentence))
            elif name not in want:
                sentence = f"{table}: unexpected {kind} {name} ({have[name]})"
                out.append(Difference(kind, where, None, have[name], sentence))
            elif want[name] != have[name]:
                sentence = f"{table}: {kind} {name} is {have[name]}; expected {want[name]}"
                out.append(Difference(kind, where, want[name], have[name], sentence))
    return out


def _diff_indexes(expected: dict[str, Index], actual: dict[str, Index]) -> list[Difference]:
    out = []
    for name in sorted(expected.keys() | actual.keys()):
        want, have = expected.get(name), actual.get(name)
        if have is None:
            assert want is not None
            sentence = f"{want.table}.{want.columns}: index {name} is missing"
            out.append(Difference("index", name, want.definition, None, sentence))
        elif want is None:
            out.append(
                Difference("index", name, None, have.definition,
                           f"{have.table}.{have.columns}: unexpected index {name} "
                           f"({have.definition})")
            )  # fmt: skip
        else:
            if want.definition != have.definition:
                out.append(
                    Difference("index", name, want.definition, have.definition,
                               f"{have.table}.{have.columns}: index {name} is "
                               f"{have.definition}; expected {want.definition}")
                )  # fmt: skip
            if want.valid and not have.valid:
                out.append(
                    Difference("index validity", name, "valid", "INVALID",
                               f"{have.table}.{have.columns}: index {name} is INVALID "
                               "(an interrupted concurrent build); drop it and build it again")
                )  # fmt: skip
    return out


def _diff_flat(kind: str, expected: dict[str, str], actual: dict[str, str]) -> list[Difference]:
    out = []
    for name in sorted(expected.keys() | actual.keys()):
        if name not in actual:
            out.append(Difference(kind, name, expected[name], None, f"{kind} {name} is missing"))
        elif name not in expected:
            out.append(Difference(kind, name, None, actual[name], f"unexpected {kind} {name}"))
        elif expected[name] != actual[name]:
            out.append(
                Difference(kind, name, expected[name], actual[name],
                           f"{kind} {name}: {actual[name]}; expected {expected[name]}")
            )  # fmt: skip
    return out


def _diff_trigger_states(
    expected: dict[str, dict[str, str]], actual: dict[str, dict[str, str]]
) -> list[Difference]:
    return [
        Difference("trigger state", f"{table}.{name}", want, have,
                   f"{table}: trigger {name} is {have}; expected {want}")
        for table, wanted in sorted(expected.items())
        for name, want in sorted(wanted.items())
        if (have := actual.get(table, {}).get(name)) is not None and have != want
    ]  # fmt: skip


def _diff_bodies(expected: dict[str, str], actual: Catalog) -> list[Difference]:
    out = []
    for name, want in sorted(expected.items()):
        have = actual.function_bodies.get(name)
        if have is None or same_body(name, want, have):
            continue
        said = f"function {name}: its body is not one chatdb knows (fingerprint {have})"
        source = actual.function_sources.get(name)
        away = nearest(name, source, want) if source is not None else None
        if away is None:
            out.append(Difference("function body", name, want, have,
                                  f"{said}; expected fingerprint {want}"))  # fmt: skip
            continue
        out.append(
            Difference(
                "function body", name, want, have,
                f"{said}; nearest is {away.body.label} ({away.body.origin}), from which its "
                f"statement {away.statement} departs at {away.token_found or 'its end'!r} "
                f"instead of {away.token_expected or 'its end'!r}: `{away.found}` where "
                f"`{away.expected}` is expected; `chatdb repair search-function` puts the "
                "known body back",
            )
        )  # fmt: skip
    return out
