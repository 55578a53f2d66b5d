"""From two catalogs to lock-safe operations: the plan behind ``chatdb create``.

``before`` is what the migrations leave (the head snapshot), ``after`` what
the models build (:mod:`chatdb.migrate.shadow`). Each difference becomes a
:class:`Step`: the calls of :mod:`chatdb.operations` that make it, and those
that undo it, so ``rollback()`` restores ``before`` exactly. A type change
that rewrites the table is made online (:mod:`chatdb.migrate.online`). What
cannot be done without a long write lock or a guess (a rename nobody named)
stops the plan with a :class:`ChatdbError` that says what to do instead.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from chatdb.catalog import Catalog, Column, Index
from chatdb.errors import ChatdbError

RECIPE = "docs/MIGRATION_WORKFLOW.md, 'Expand and contract'"
# Defaults PostgreSQL evaluates once for an ADD COLUMN (no rewrite): constants and these.
_STABLE_CALLS = re.compile(
    r"^(now\(\)|current_timestamp|current_date|transaction_timestamp\(\))$", re.IGNORECASE
)
_VARCHAR = re.compile(r"^(?:character varying|varchar)(?:\((\d+)\))?$", re.IGNORECASE)


@dataclass(frozen=True)
class Call:
    """``operations.<function>(migrator, *args, **kwargs)`` in a migration file."""

    function: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    allow: str | None = None  # a lint rule this call knowingly trips (``# chatdb: allow``)


@dataclass
class Step:
    summary: str
    up: list[Call]
    down: list[Call]
    outside_transaction: str | None = None  # why the migration must be atomic = False
    renamed: tuple[str, str] | None = None  # (new, old): a table or "table.column" renamed


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)

    @property
    def atomic(self) -> bool:
        return not any(step.outside_transaction for step in self.steps)

    @property
    def renamed(self) -> dict[str, str]:
        return dict(step.renamed for step in self.steps if step.renamed)

    @property
    def reasons(self) -> list[str]:
        return list(
            dict.fromkeys(s.outside_transaction for s in self.steps if s.outside_transaction)
        )


def _call(function: str, *args: Any, allow: str | None = None, **kwargs: Any) -> Call:
    return Call(function, args, tuple(kwargs.items()), allow)


def plan(
    before: Catalog, after: Catalog, renames: Sequence[str] = (), backfills: Sequence[str] = ()
) -> Plan:
    """The steps from ``before`` to ``after``; raises when a change needs a human decision.

    ``backfills`` (``table.column=SQL``) give the rows already there a value
    for a new ``NOT NULL`` column without a default.
    """
    current = copy.deepcopy(before)
    fills = _backfills(backfills)
    steps = [*_renames(current, after, renames)]
    _refuse_unsupported(current, after)
    guard = _guard(current, after)
    created_enums = [
        Step(
            f"create enum {name}", [_call("create_enum", name, labels)], [_call("drop_enum", name)]
        )
        for name, labels in after.enums.items()
        if name not in current.enums
    ]
    added_labels = _added_labels(current, after)
    new_tables = _new_tables(current, after)
    dropped_constraints, constraints, late_constraints = _constraints(current, after)
    dropped_indexes, indexes = _indexes(current, after)
    columns = _columns(current, after, fills)
    if fills:
        where, value = next(iter(fills.items()))
        raise ChatdbError(
            f"--backfill {where}={value}: {where} is not a new NOT NULL column without a default "
            "in the models; there is nothing to backfill"
        )
    dropped = _dropped_tables(current, after)
    removed_labels = _removed_labels(current, after)
    dropped_enums = [
        Step(
            f"drop enum {name}",
            [_call("drop_enum", name)],
            [_call("create_enum", name, labels)],
        )
        for name, labels in current.enums.items()
        if name not in after.enums
    ]
    # Keys and indexes go before the columns they may cover, and come back after them.
    steps += guard + created_enums + added_labels + new_tables
    steps += dropped_constraints + dropped_indexes + columns
    steps += constraints + indexes + late_constraints + dropped + removed_labels + dropped_enums
    return Plan(steps)


# -- renames ------------------------------------------------------------------


def _renames(current: Catalog, after: Catalog, renames: Sequence[str]) -> list[Step]:
    """Apply ``--rename old:new`` to ``current`` (tables, ``table.column``, ``enum.LABEL``)."""
    steps = []
    for spec in renames:
        old, sep, new = spec.partition(":")
        if not sep or not old or not new:
            raise ChatdbError(
                f"--rename {spec!r}: expected OLD:NEW (table, table.column or enum.LABEL)"
            )
        if "." not in old:
            steps.append(_rename_table(current, after, old, new))
            continue
        owner, old_name = old.split(".", 1)
        new_name = new.split(".", 1)[-1]
        if owner in current.tables:
            steps.append(_rename_column(current, after, owner, old_name, new_name))
        elif owner in current.enums:
            labels = current.enums[owner]
            if old_name not in labels or new_name not in after.enums.get(owner, []):
                raise ChatdbError(
                    f"--rename {spec}: enum {owner} has no label {old_name} to rename to {new_name}"
                )
            labels[labels.index(old_name)] = new_name
            steps.append(
                Step(
                    f"rename label {owner}.{old_name} to {new_name}",
                    [_call("rename_enum_label", owner, old_name, new_name)],
                    [_call("rename_enum_label", owner, new_name, old_name)],
                )
            )
        else:
            raise ChatdbError(f"--rename {spec}: {owner} is neither a table nor an enum type")
    return steps + _renamed_by_definition(current, after)


def _rename_table(current: Catalog, after: Catalog, old: str, new: str) -> Step:
    if old not in current.tables or new not in after.tables or new in current.tables:
        raise ChatdbError(
            f"--rename {old}:{new}: expected table {old} to become the new table {new}"
        )
    current.tables[new] = current.tables.pop(old)
    for group in (current.constraints, current.triggers):
        if old in group:
            group[new] = group.pop(old)
    pattern = re.compile(rf"\b{old}\(")
    for table in current.constraints.values():
        for name, definition in table.items():
            table[name] = pattern.sub(f"{new}(", definition)
    for name, index in current.indexes.items():
        if index.table == old:
            current.indexes[name] = replace(
                index,
                table=new,
                definition=index.definition.replace(f" ON public.{old} ", f" ON public.{new} "),
            )
    return Step(
        f"rename table {old} to {new}",
        [_call("rename_table", old, new)],
        [_call("rename_table", new, old)],
        renamed=(new, old),
    )


def _rename_column(current: Catalog, after: Catalog, table: str, old: str, new: str) -> Step:
    names = [c.name for c in current.tables[table]]
    if old not in names or new not in [c.name for c in after.tables.get(table, [])]:
        raise ChatdbError(
            f"--rename {table}.{old}:{new}: expected column {table}.{old} to become {table}.{new}"
        )
    if new in names:
        raise ChatdbError(
            f"--rename {table}.{old}:{new}: column {table}.{new} exists already, and a column "
            f"cannot be renamed onto another; drop {table}.{new} in a migration of its own first "
            "(take it out of the models, chatdb create, migrate), then rename"
        )
    current.tables[table] = [
        replace(c, name=new) if c.name == old else c for c in current.tables[table]
    ]
    word = re.compile(rf"(?<![\w.]){old}(?!\w)")
    for name, definition in current.constraints.get(table, {}).items():
        # The table's own columns only: what a foreign key REFERENCES is another column.
        own, sep, parent = definition.partition(" REFERENCES ")
        current.constraints[table][name] = word.sub(new, own) + sep + parent
    for constraints in current.constraints.values():
        for name, definition in constraints.items():
            constraints[name] = definition.replace(
                f"REFERENCES {table}({old})", f"REFERENCES {table}({new})"
            )
    for name, index in current.indexes.items():
        if index.table == table:
            columns = ",".join(new if c == old else c for c in index.columns.split(","))
            current.indexes[name] = replace(
                index, columns=columns, definition=word.sub(new, index.definition)
            )
    return Step(
        f"rename column {table}.{old} to {new}",
        [_call("rename_column", table, old, new)],
        [_call("rename_column", table, new, old)],
        renamed=(f"{table}.{new}", f"{table}.{old}"),
    )


def _renamed_by_definition(current: Catalog, after: Catalog) -> list[Step]:
    """Constraints and indexes whose definition is unchanged but whose name follows a rename."""
    steps = []
    for table, constraints in current.constraints.items():
        wanted = after.constraints.get(table, {})
        for name, definition in list(constraints.items()):
            if name in wanted:
                continue
            match = [n for n, d in wanted.items() if d == definition and n not in constraints]
            if len(match) == 1:
                constraints[match[0]] = constraints.pop(name)
                steps.append(
                    Step(
                        f"rename constraint {name} to {match[0]}",
                        [_call("rename_constraint", table, name, match[0])],
                        [_call("rename_constraint", table, match[0], name)],
                    )
                )
                if name in current.indexes:  # a key's index is renamed with it
                    current.indexes[match[0]] = _renamed_index(
                        current.indexes.pop(name), name, match[0]
                    )
    for name, index in list(current.indexes.items()):
        if name in after.indexes:
            continue
        match = [
            n
            for n, i in after.indexes.items()
            if n not in current.indexes
            and _renamed_index(index, name, n).definition == i.definition
        ]
        if len(match) == 1:
            current.indexes[match[0]] = _renamed_index(current.indexes.pop(name), name, match[0])
            steps.append(
                Step(
                    f"rename index {name} to {match[0]}",
                    [_call("rename_index", name, match[0])],
                    [_call("rename_index", match[0], name)],
                )
            )
    return steps


def _renamed_index(index: Index, old: str, new: str) -> Index:
    return replace(
        index, definition=index.definition.replace(f"INDEX {old} ON", f"INDEX {new} ON", 1)
    )


def _ask_for_rename(kind: str, gone: list[str], new: list[str], example: str) -> ChatdbError:
    return ChatdbError(
        f"{kind} {', '.join(gone)} disappeared and {', '.join(new)} appeared: if that is a "
        f"rename, say so with --rename {example}; if not, make two migrations (remove the old "
        "one and run chatdb create, then add the new one and run it again)"
    )


# -- what is not generated ----------------------------------------------------


def _refuse_unsupported(current: Catalog, after: Catalog) -> None:
    gone = [t for t in current.tables if t not in after.tables]
    new = [t for t in after.tables if t not in current.tables]
    if gone and new:
        raise _ask_for_rename("table(s)", gone, new, f"{gone[0]}:{new[0]}")
    for table, columns in after.tables.items():
        if table not in current.tables:
            continue
        have = [c.name for c in current.tables[table]]
        want = [c.name for c in columns]
        gone = [f"{table}.{c}" for c in have if c not in want]
        added = [f"{table}.{c}" for c in want if c not in have]
        if gone and added:
            raise _ask_for_rename("column(s)", gone, added, f"{gone[0]}:{added[0].split('.')[1]}")
    for name, labels in after.enums.items():
        existing = current.enums.get(name)
        if existing is None:
            continue
        gone = [f"{name}.{label}" for label in existing if label not in labels]
        added = [f"{name}.{label}" for label in labels if label not in existing]
        if gone and added:
            raise _ask_for_rename("enum label(s)", gone, added, f"{gone[0]}:{added[0]}")
        kept = [label for label in labels if label in existing]
        if kept != [label for label in existing if label in labels]:
            raise ChatdbError(
                f"enum {name}: labels reordered ({', '.join(existing)} -> {', '.join(labels)}); "
                "PostgreSQL cannot reorder enum labels in place: keep the order and append"
            )
    differing = []
    for kind, mine, theirs in (
        ("trigger", current.triggers, after.triggers),
        ("function", current.functions, after.functions),
        ("extension", dict.fromkeys(current.extensions, ""), dict.fromkeys(after.extensions, "")),
    ):
        for name in sorted(mine.keys() | theirs.keys()):
            if mine.get(name) != theirs.get(name) and not (
                kind == "trigger" and (name not in theirs and name not in after.tables)
            ):
                differing.append(f"{kind} {name}")
    if differing:
        raise ChatdbError(
            f"{', '.join(differing)} changed: chatdb create does not generate triggers, "
            "functions or extensions; write that migration by hand (migrator.sql with its "
            "rollback), run chatdb create --empty for the template"
        )


# -- enums --------------------------------------------------------------------


def _enum_columns(catalog: Catalog, name: str) -> list[tuple[str, str, str | None]]:
    return [
        (table, column.name, column.default)
        for table, columns in catalog.tables.items()
        for column in columns
        if column.type == name
    ]


def _added_labels(current: Catalog, after: Catalog) -> list[Step]:
    """One step per enum adding its new labels; its rollback removes them in one swap."""
    steps = []
    for name, labels in after.enums.items():
        have = current.enums.get(name)
        if have is None or not set(labels) - set(have):
            continue
        keep, calls, added = list(have), [], []
        for index, label in enumerate(labels):
            if label in have:
                continue
            position = {"after": labels[index - 1]} if index else {"before": labels[1]}
            have.insert(have.index(labels[index - 1]) + 1 if index else 0, label)
            calls.append(_call("add_enum_label", name, label, **position))
            added.append(label)
        steps.append(
            Step(
                f"add label{'s' if len(added) > 1 else ''} {', '.join(added)} to enum {name}",
                calls,
                [_remove_labels(current, name, added, keep)],
                "ALTER TYPE ... ADD VALUE commits before the label is used",
            )
        )
    return steps


def _remove_labels(catalog: Catalog, name: str, labels: list[str], keep: list[str]) -> Call:
    """The swap removing ``labels`` from enum ``name``: each table of its columns rewritten once.

    It knowingly rewrites those tables (lint's ``type-rewrite``), whichever direction runs it.
    """
    columns = _enum_columns(catalog, name)
    if len(labels) == 1:
        return _call(
            "remove_enum_label", name, labels[0], keep=keep, columns=columns, allow="type-rewrite"
        )
    return _call(
        "remove_enum_labels", name, labels, keep=keep, columns=columns, allow="type-rewrite"
    )


def _removed_labels(current: Catalog, after: Catalog) -> list[Step]:
    """One step per enum removing its labels, with the rollback adding them back in place."""
    steps = []
    for name, labels in after.enums.items():
        have = current.enums.get(name)
        if have is None:
            continue
        gone = [label for label in have if label not in labels]
        if not gone:
            continue
        keep = [label for label in have if label in labels]
        back = []
        for label in gone:  # in the original order, so each neighbour named exists by then
            index = have.index(label)
            following = [other for other in have[index + 1 :] if other in labels]
            position = {"after": have[index - 1]} if index else {"before": following[0]}
            back.append(_call("add_enum_label", name, label, **position))
        remove = _remove_labels(after, name, gone, keep)
        steps.append(
            Step(
                f"remove label{'s' if len(gone) > 1 else ''} {', '.join(gone)} from enum {name} "
                "(refused while rows use them; rewrites each table of its columns once)",
                [remove],
                back,
                "ALTER TYPE ... ADD VALUE in the rollback",
            )
        )
        current.enums[name] = keep
    return steps


# -- tables -------------------------------------------------------------------


def _table_calls(catalog: Catalog, table: str) -> list[Call]:
    columns = [(c.name, c.type, c.not_null, c.default) for c in catalog.tables[table]]
    constraints = sorted(
        catalog.constraints.get(table, {}).items(),
        key=lambda item: (not item[1].startswith("PRIMARY"), item[0]),
    )
    calls = [_call("create_table", table, columns, constraints)]
    keys = catalog.constraints.get(table, {})
    calls += [
        _call("add_index", index.definition)
        for name, index in sorted(catalog.indexes.items())
        if index.table == table and name not in keys
    ]
    return calls


def _parents(catalog: Catalog, table: str) -> set[str]:
    return {
        match[1]
        for definition in catalog.constraints.get(table, {}).values()
        for match in [re.search(r"REFERENCES ([a-z_][a-z0-9_]*)\(", definition)]
        if match and match[1] != table
    }


def _in_dependency_order(catalog: Catalog, tables: list[str]) -> list[str]:
    ordered: list[str] = []
    pending = list(tables)
    while pending:
        ready = [t for t in pending if not (_parents(catalog, t) & set(pending) - {t})]
        if not ready:
            raise ChatdbError(
                f"tables {', '.join(pending)} reference each other; add them one at a time"
            )
        ordered += ready
        pending = [t for t in pending if t not in ready]
    return ordered


def _new_tables(current: Catalog, after: Catalog) -> list[Step]:
    new = _in_dependency_order(after, [t for t in after.tables if t not in current.tables])
    return [
        Step(f"create table {t}", _table_calls(after, t), [_call("drop_table", t)]) for t in new
    ]


def _dropped_tables(current: Catalog, after: Catalog) -> list[Step]:
    gone = _in_dependency_order(current, [t for t in current.tables if t not in after.tables])
    return [
        Step(f"drop table {t}", [_call("drop_table", t)], _table_calls(current, t))
        for t in reversed(gone)
    ]


def _guard(current: Catalog, after: Catalog) -> list[Step]:
    tables = [t for t in current.tables if t not in after.tables]
    columns = [
        (table, column.name)
        for table, cols in current.tables.items()
        if table in after.tables
        for column in cols
        if column.name not in {c.name for c in after.tables[table]}
    ]
    if not tables and not columns:
        return []
    return [
        Step(
            "refuse to drop what holds data (chatdb migrate --yes to go on)",
            [_call("guard_data_loss", tables=tables, columns=columns)],
            [],
        )
    ]


# -- columns ------------------------------------------------------------------


def constant_default(default: str | None) -> bool:
    """Whether ADD COLUMN with this default is a catalog change (no call, or a stable one)."""
    return default is None or "(" not in default or bool(_STABLE_CALLS.match(default.strip()))


def binary_compatible(old: str, new: str) -> bool:
    """A type change PostgreSQL makes in the catalog only: no rewrite, no scan."""
    if new.lower() == "text":
        return old == "text" or bool(_VARCHAR.match(old))
    new_match, old_match = _VARCHAR.match(new), _VARCHAR.match(old)
    if not new_match:
        return old.lower() == new.lower()
    if old == "text":
        return new_match[1] is None
    if not old_match:
        return False
    return new_match[1] is None or (
        old_match[1] is not None and int(new_match[1]) >= int(old_match[1])
    )


def _backfills(specs: Sequence[str]) -> dict[str, str]:
    """``table.column=SQL`` options as ``{"table.column": "SQL"}``."""
    fills = {}
    for spec in specs:
        where, sep, value = spec.partition("=")
        table, dot, column = where.partition(".")
        if not (sep and dot and table and column and value.strip()):
            raise ChatdbError(
                f"--backfill {spec!r}: expected TABLE.COLUMN=SQL (the value the rows already "
                "there get, an SQL expression such as 0 or 'none' or now())"
            )
        fills[where] = value.strip()
    return fills


def _columns(current: Catalog, after: Catalog, fills: dict[str, str]) -> list[Step]:
    """Column steps; each backfill used is taken out of ``fills``."""
    steps = []
    for table, columns in after.tables.items():
        if table not in current.tables:
            continue
        have = {c.name: c for c in current.tables[table]}
        added = [c for c in columns if c.name not in have]
        for column in added:
            steps += _add_column(table, column, fills.pop(f"{table}.{column.name}", None))
        for column in columns:
            if column.name in have:
                steps += _change_column(current, table, have[column.name], column)
        for name, column in have.items():
            if name not in {c.name for c in columns}:
                steps.append(
                    Step(
                        f"drop column {table}.{name}",
                        [_call("drop_column", table, name)],
                        [call for step in _add_column(table, column) for call in step.up],
                        "SET NOT NULL in the rollback" if column.not_null else None,
                    )
                )
    return steps


def _add_column(table: str, column: Column, backfill: str | None = "") -> list[Step]:
    """Steps adding ``column``; a new NOT NULL one without a default needs ``backfill``.

    ``backfill`` is the SQL value the rows already there get; None when the
    user gave none, "" where none is needed (the rollback of a dropped
    column, which comes back empty).
    """
    where = f"{table}.{column.name}"
    undo = [_call("drop_column", table, column.name)]
    if constant_default(column.default):
        options: dict[str, Any] = {"not_null": True} if column.not_null else {}
        options.update({"default": column.default} if column.default is not None else {})
        call = _call("add_column", table, column.name, column.type, **options)
        if column.not_null and column.default is None:
            if backfill is None:
                raise ChatdbError(
                    f"{where}: a new NOT NULL column without a default needs a value for the "
                    f"rows already there: pass --backfill {where}=SQL (such as 0, 'none' or "
                    "now()), or give it a default, or make it nullable"
                )
            steps = [
                Step(
                    f"add column {where}",
                    [_call("add_column", table, column.name, column.type)],
                    undo,
                )
            ]
            if backfill:
                fill = _call("backfill", table, column.name, backfill)
                steps.append(Step(f"backfill {where} with {backfill} (in batches)", [fill], []))
            return [
                *steps,
                Step(
                    f"make {where} NOT NULL",
                    [_call("set_not_null", table, column.name)],
                    [_call("drop_not_null", table, column.name)],
                    "SET NOT NULL validates a check first, without a write lock",
                ),
            ]
        return [Step(f"add column {where}", [call], undo)]
    if column.not_null:
        raise ChatdbError(
            f"{where}: a new NOT NULL column whose default {column.default} is volatile would "
            "rewrite the table under an exclusive lock; add it nullable with the default, "
            f"backfill in batches, then make it NOT NULL (see {RECIPE})"
        )
    return [
        Step(
            f"add column {where} (default {column.default} for new rows only)",
            [
                _call("add_column", table, column.name, column.type),
                _call("set_column_default", table, column.name, column.default),
            ],
            undo,
        )
    ]


def _change_column(current: Catalog, table: str, old: Column, new: Column) -> list[Step]:
    where = f"{table}.{new.name}"
    steps = []
    if old.type != new.type:
        if not binary_compatible(old.type, new.type):
            return [_online_type_change(current, table, old, new)]
        steps.append(
            Step(
                f"change type of {where} to {new.type} (no rewrite)",
                [_call("set_column_type", table, new.name, new.type)],
                # Narrowing back checks (rewrites) every row: the rollback says it knows.
                [
                    _call(
                        "set_column_type",
                        table,
                        new.name,
                        old.type,
                        allow=None if binary_compatible(new.type, old.type) else "type-rewrite",
                    )
                ],
            )
        )
    if old.default != new.default:
        steps.append(
            Step(
                f"{'drop' if new.default is None else 'set'} default of {where}",
                [_call("set_column_default", table, new.name, new.default)],
                [_call("set_column_default", table, new.name, old.default)],
            )
        )
    if old.not_null != new.not_null:
        make, unmake = (
            _call("set_not_null", table, new.name),
            _call("drop_not_null", table, new.name),
        )
        steps.append(
            Step(
                f"make {where} {'NOT NULL' if new.not_null else 'nullable'}",
                [make] if new.not_null else [unmake],
                [unmake] if new.not_null else [make],
                "SET NOT NULL validates a check first, without a write lock",
            )
        )
    return steps


def _online_type_change(current: Catalog, table: str, old: Column, new: Column) -> Step:
    """A rewriting type change, online: new column, sync trigger, batched backfill, swap.

    The new column takes the model's default and nullability in the swap, so
    no other step changes them; the rollback is the same change back.
    """
    where = f"{table}.{new.name}"
    dependents = [
        f"index {name}"
        for name, index in current.indexes.items()
        if index.table == table and new.name in index.columns.split(",")
    ] + [
        f"constraint {name}"
        for name, definition in current.constraints.get(table, {}).items()
        if re.search(rf"\b{re.escape(new.name)}\b", definition)
    ]
    if dependents:
        raise ChatdbError(
            f"{where}: type {old.type} -> {new.type} is made online by swapping in a new column, "
            f"and {', '.join(dependents)} would go with the old one; not generated: drop them "
            "in one migration, change the type in the next, make them again in a third"
        )

    def change(type_: str, column: Column) -> Call:
        options: dict[str, Any] = {"default": column.default} if column.default else {}
        options.update({"not_null": True} if column.not_null else {})
        return _call("change_column_type", table, new.name, type_, **options)

    return Step(
        f"change type of {where} to {new.type} online (new column kept in step by a trigger, "
        "backfilled in batches, then swapped in under a short lock)",
        [change(new.type, new)],
        [change(old.type, old)],
        "the type change backfills in batches, each committed on its own",
    )


# -- constraints and indexes --------------------------------------------------


def _safe_kind(table: str, name: str, definition: str) -> None:
    if not definition.startswith(("FOREIGN KEY", "CHECK")):
        raise ChatdbError(
            f"{table}: constraint {name} ({definition}) on an existing table is not generated: "
            "build a unique index CONCURRENTLY, then ADD CONSTRAINT ... USING INDEX, by hand"
        )


def _constraints(current: Catalog, after: Catalog) -> tuple[list[Step], list[Step], list[Step]]:
    """Steps dropping constraints (before column changes), replacing them, adding them (after)."""
    dropped: list[Step] = []
    early: list[Step] = []
    late: list[Step] = []
    for table in sorted(current.tables.keys() & after.tables.keys()):
        have, want = current.constraints.get(table, {}), after.constraints.get(table, {})
        for name in sorted(have.keys() | want.keys()):
            old, new = have.get(name), want.get(name)
            if old == new:
                continue
            _safe_kind(table, name, old or new or "")
            if old is None:
                _safe_kind(table, name, new or "")
                late.append(
                    Step(
                        f"add constraint {name} on {table} (NOT VALID, then VALIDATE)",
                        [_call("add_constraint", table, name, new)],
                        [_call("drop_constraint", table, name, new)],
                        "VALIDATE CONSTRAINT scans without blocking writers",
                    )
                )
            elif new is None:
                dropped.append(
                    Step(
                        f"drop constraint {name} on {table}",
                        [_call("drop_constraint", table, name, old)],
                        [_call("add_constraint", table, name, old)],
                        "VALIDATE CONSTRAINT in the rollback",
                    )
                )
            else:
                _safe_kind(table, name, new)
                early.append(
                    Step(
                        f"change constraint {name} on {table} to {new}",
                        [_call("replace_constraint", table, name, new)],
                        [_call("replace_constraint", table, name, old)],
                        "VALIDATE CONSTRAINT scans without blocking writers",
                    )
                )
    return dropped, early, late


def _indexes(current: Catalog, after: Catalog) -> tuple[list[Step], list[Step]]:
    """Steps dropping indexes (before column changes), and building or rebuilding them (after)."""
    dropped: list[Step] = []
    steps: list[Step] = []
    common = current.tables.keys() & after.tables.keys()
    keys = {name for constraints in after.constraints.values() for name in constraints}
    keys |= {name for constraints in current.constraints.values() for name in constraints}
    for name in sorted(current.indexes.keys() | after.indexes.keys()):
        old, new = current.indexes.get(name), after.indexes.get(name)
        if name in keys or (old and old.table not in common) or (new and new.table not in common):
            continue
        if old is not None and new is not None and old.definition == new.definition:
            continue
        up = ([_call("remove_index", name)] if old else []) + (
            [_call("add_index", new.definition)] if new else []
        )
        down = ([_call("remove_index", name)] if new else []) + (
            [_call("add_index", old.definition)] if old else []
        )
        verb = "add" if old is None else "drop" if new is None else "rebuild"
        (dropped if new is None else steps).append(
            Step(f"{verb} index {name} (CONCURRENTLY)", up, down, "CREATE/DROP INDEX CONCURRENTLY")
        )
    return dropped, steps
