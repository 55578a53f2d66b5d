"""``chatdb lint``: which statements of a migration would block traffic on a large table.

It lints the SQL a migration sends (rendered without a database by
:func:`chatdb.migrate.preview.offline_statements`), statement by statement,
knowing which tables existed before it (the stored snapshot of the migration
before) and which it creates itself (new tables are empty: anything goes).
The rollback is linted like the upgrade, against the schema the migration
leaves, and for the data it would drop. The statements inside a ``DO``
block count as statements of their own. A Python step (``migrator.run``) is
reported: nobody but its author can say what it locks.
Each finding names the lock, how long it is held, and the safe alternative.
``# chatdb: allow <rule>`` on the line of the call that queues the statement
silences that rule there, on purpose.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from chatdb.catalog import Catalog, snapshots
from chatdb.migrate import loader, verify
from chatdb.migrate.autogenerate import binary_compatible, constant_default
from chatdb.migrate.preview import offline_statements

RULES = {
    "concurrent-index": (
        "CREATE INDEX on existing table {table} holds a SHARE lock (every INSERT, UPDATE and "
        "DELETE waits) for the whole build; build it CONCURRENTLY in an atomic = False "
        "migration (operations.add_index)"
    ),
    "foreign-key-not-valid": (
        "ADD FOREIGN KEY on existing table {table} holds SHARE ROW EXCLUSIVE locks on it and "
        "its parent (writes wait) while it scans every row; add it NOT VALID, then VALIDATE "
        "CONSTRAINT in a separate step (operations.add_constraint)"
    ),
    "set-not-null": (
        "SET NOT NULL on existing table {table} holds an ACCESS EXCLUSIVE lock (reads and "
        "writes wait) while it scans every row; first add CHECK (... IS NOT NULL) NOT VALID "
        "and VALIDATE it, outside a transaction (operations.set_not_null)"
    ),
    "volatile-default": (
        "ADD COLUMN with the volatile default {detail} rewrites table {table} under an ACCESS "
        "EXCLUSIVE lock (reads and writes wait) for the whole rewrite; add the column without "
        "it, SET DEFAULT for new rows, and backfill in batches"
    ),
    "type-rewrite": (
        "ALTER COLUMN ... TYPE {detail} rewrites table {table} under an ACCESS EXCLUSIVE lock "
        "(reads and writes wait) for the whole rewrite; expand and contract instead (new "
        "column, backfill, switch, drop: docs/MIGRATION_WORKFLOW.md)"
    ),
    "add-value-in-transaction": (
        "ALTER TYPE {table} ADD VALUE {detail} runs in the migration's transaction and a later "
        "statement uses the label, which PostgreSQL refuses before the addition commits; mark "
        "the migration atomic = False"
    ),
    "check-not-valid": (
        "ADD CHECK on existing table {table} holds an ACCESS EXCLUSIVE lock (reads and writes "
        "wait) while it scans every row; add it NOT VALID, then VALIDATE CONSTRAINT in a "
        "separate step (operations.add_constraint)"
    ),
    "unique-constraint": (
        "ADD {detail} on existing table {table} builds its index under an ACCESS EXCLUSIVE lock "
        "(reads and writes wait); build a unique index CONCURRENTLY first (operations.add_index), "
        "then ADD CONSTRAINT ... {detail} USING INDEX"
    ),
    "required-column": (
        "ADD COLUMN {detail} NOT NULL without a DEFAULT on existing table {table} fails on its "
        "first row, and every writer that does not set it fails after; give it a constant "
        "DEFAULT, or add it nullable, backfill, then operations.set_not_null"
    ),
    "concurrent-drop-index": (
        "DROP INDEX {detail} on existing table {table} takes an ACCESS EXCLUSIVE lock: it "
        "waits for every query on the table and every read and write queues behind it; drop "
        "it CONCURRENTLY in an atomic = False migration (operations.remove_index)"
    ),
    "concurrent-in-transaction": (
        "{detail} CONCURRENTLY ({table}) cannot run inside a transaction block and PostgreSQL "
        "refuses it; mark the migration atomic = False (and never put it in a DO block)"
    ),
    "unbatched-write": (
        "{detail} on existing table {table} touches every matching row in one transaction, "
        "holding their row locks (writers to them wait) and bloating the table until it "
        "commits; move the rows in batches (WHERE key IN (SELECT ... LIMIT n), repeated, "
        "atomic = False)"
    ),
    "python-step": (
        "{detail} is Python code (migrator.run): lint cannot tell what it locks or how many "
        "rows it touches; check it by hand, then say so with # chatdb: allow python-step"
    ),
    "rollback-drops-data": (
        "the rollback drops {detail}, which existed before this migration: its rows are lost "
        "and no rollback guard refuses it; keep the data (rename it aside) or restore it "
        "from the migration's own copy"
    ),
}
_NAME = r"(?:public\.)?\"?([a-z_][a-z0-9_]*)\"?"
_CREATE_TABLE = re.compile(rf"^CREATE TABLE (?:IF NOT EXISTS )?{_NAME}", re.I)
_CREATE_INDEX = re.compile(
    rf"^CREATE (?:UNIQUE )?INDEX (CONCURRENTLY )?.*? ON (?:ONLY )?{_NAME}", re.I
)
_ALTER_TABLE = re.compile(rf"^ALTER TABLE (?:IF EXISTS )?(?:ONLY )?{_NAME}\s+(.*)$", re.I | re.S)
_ADD_VALUE = re.compile(rf"^ALTER TYPE {_NAME} ADD VALUE (?:IF NOT EXISTS )?('(?:[^']|'')*')", re.I)
_CHECK_NOT_NULL = re.compile(r"ADD CONSTRAINT (\w+) CHECK \(\(?(\w+) IS NOT NULL\)?\)", re.I)
_VALIDATE = re.compile(r"VALIDATE CONSTRAINT (\w+)", re.I)
_SET_NOT_NULL = re.compile(r"ALTER (?:COLUMN )?(\w+) SET NOT NULL", re.I)
_ADD_COLUMN = re.compile(
    r"ADD (?:COLUMN )?(?:IF NOT EXISTS )?(\w+) .*?DEFAULT (.+?)(?: NOT NULL)?(?:,|$)", re.I
)
_TYPE = re.compile(
    r"ALTER (?:COLUMN )?(\w+) (?:SET DATA )?TYPE (.+?)(?: USING (.+?))?(?:,|$)", re.I
)
_WRITE = re.compile(rf"^(UPDATE|DELETE FROM) (?:ONLY )?{_NAME}(.*)$", re.I | re.S)
_BATCH = re.compile(r"\bLIMIT\b|\bBETWEEN\b", re.I)
_DO = re.compile(r"^DO (?:LANGUAGE \w+ )?(\$\w*\$)(.*)\1(?: LANGUAGE \w+)?$", re.I | re.S)
# PL/pgSQL around the SQL of a DO block: block and control keywords, and statements of its own.
_PLPGSQL = re.compile(
    r"^(?:DECLARE\b.*|BEGIN\b|END(?: IF| LOOP)?\b|ELSE\b|(?:ELS)?IF\b.*?\bTHEN\b|"
    r"(?:FOR|WHILE)\b.*?\bLOOP\b|LOOP\b|(?:EXIT|CONTINUE|RAISE|PERFORM|RETURN|GET)\b.*)\s*",
    re.I | re.S,
)
_EXECUTE = re.compile(r"^EXECUTE (?:format\()?'((?:[^']|'')*)'", re.I | re.S)
_ADD_CHECK = re.compile(r"\bADD (?:CONSTRAINT \w+ )?CHECK\b", re.I)
_ADD_UNIQUE = re.compile(r"\bADD (?:CONSTRAINT \w+ )?(UNIQUE|PRIMARY KEY)\b", re.I)
_ADD_PLAIN_COLUMN = re.compile(
    r"\bADD (?:COLUMN )?(?:IF NOT EXISTS )?(?!CONSTRAINT\b|CHECK\b|UNIQUE\b|PRIMARY\b|FOREIGN\b)"
    r"(\w+) ([^,]*)",
    re.I,
)
_CONCURRENTLY = re.compile(  # the table of a CREATE, the index of a DROP
    r"^(CREATE (?:UNIQUE )?INDEX|DROP INDEX|REINDEX \w+) CONCURRENTLY (?:IF (?:NOT )?EXISTS )?"
    rf"(?:.*? ON (?:ONLY )?)?{_NAME}",
    re.I,
)
_DROP_INDEX = re.compile(rf"^DROP INDEX (?!CONCURRENTLY\b)(?:IF EXISTS )?{_NAME}", re.I)
_DROP_TABLE = re.compile(r"^DROP TABLE (?:IF EXISTS )?(.+?)(?: CASCADE| RESTRICT)?$", re.I)
_DROP_COLUMN = re.compile(r"DROP (?:COLUMN )?(?:IF EXISTS )?(\w+)", re.I)


class Sent(NamedTuple):
    """One statement a migration sends, the line that queued it, and whether a DO block runs it."""

    sql: str
    line: int | None
    in_block: bool = False  # a DO block always runs in a transaction
    batched: bool = False  # a backfill outside a transaction: one short transaction per batch


@dataclass(frozen=True)
class Finding:
    path: Path
    line: int | None
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line or 1}: {self.rule}: {self.message}"


def split_sql(text: str) -> list[str]:
    """Statements of a script: split on ``;`` outside quotes, dollar quotes and comments."""
    statements, current, i = [], [], 0
    while i < len(text):
        char = text[i]
        if text.startswith("--", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        if char == "'":
            end = i + 1
            while end < len(text) and not (text[end] == "'" and text[end + 1 : end + 2] != "'"):
                end += 2 if text[end] == "'" else 1
            current.append(text[i : end + 1])
            i = end + 1
            continue
        dollar = re.match(r"\$[a-zA-Z_]*\$", text[i:])
        if dollar:
            end = text.find(dollar[0], i + len(dollar[0]))
            end = len(text) if end < 0 else end + len(dollar[0])
            current.append(text[i:end])
            i = end
            continue
        if char == ";":
            statements.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    statements.append("".join(current))
    return [" ".join(s.split()) for s in statements if s.strip()]


def _allowed(source_lines: list[str], tree: ast.Module, line: int | None, rule: str) -> bool:
    """Whether the call queued at ``line`` has ``# chatdb: allow <rule>`` on one of its lines."""
    if line is None:
        return False
    first, last = line, line
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.stmt)
            and not isinstance(node, (ast.FunctionDef, ast.With))
            and node.lineno <= line <= (node.end_lineno or node.lineno)
        ):
            first, last = node.lineno, node.end_lineno or node.lineno
    marker = re.compile(rf"#\s*chatdb:\s*allow\s+{re.escape(rule)}\b")
    return any(marker.search(text) for text in source_lines[first - 1 : last])


def _catalog(directory: Path, names: list[str], name: str) -> Catalog | None:
    index = names.index(name)
    if index == 0:
        return verify.EMPTY
    path = snapshots.path_for(directory, names[index - 1])
    return snapshots.load(path) if path.exists() else None


def lint(path: Path) -> list[Finding]:
    """Every finding of one migration file (its upgrade, and its rollback for data loss)."""
    path = Path(path)
    directory, name = path.parent, path.stem
    names = loader.names(directory)
    migration = loader.load(directory, name)
    before = _catalog(directory, names, name)
    after_path = snapshots.path_for(directory, name)
    after = snapshots.load(after_path) if after_path.exists() else None
    upgrade, python_up = _statements(directory, name, upgrade=True)
    rollback, python_down = _statements(directory, name, upgrade=False)
    found = [("", f) for f in python_up + _statement_findings(upgrade, before, migration.atomic)]
    # The rollback runs on the schema the migration leaves (unknown without its snapshot:
    # then every table counts as existing).
    found += [
        ("the rollback: ", f)
        for f in python_down
        + _statement_findings(rollback, after, migration.atomic)
        + _rollback_findings(rollback, before, after)
    ]
    source = path.read_text()
    tree, lines = ast.parse(source), source.splitlines()
    return [
        Finding(path, line, rule, where + RULES[rule].format(**details))
        for where, (line, rule, details) in found
        if not _allowed(lines, tree, line, rule)
    ]


def _statements(directory: Path, name: str, *, upgrade: bool) -> tuple[list[Sent], list[Found]]:
    """The statements one direction sends (with those inside DO blocks), and its Python steps."""
    statements: list[Sent] = []
    python: list[Found] = []
    for step in offline_statements(directory, name, upgrade=upgrade, python_steps=True):
        if step.python:
            python.append((step.line, "python-step", {"detail": step.sql}))
            continue
        for sql in split_sql(step.sql):
            statements.append(Sent(_unquoted(sql), step.line, batched=step.batched))
            statements += [Sent(_unquoted(inner), step.line, True) for inner in do_block(sql)]
    return statements, python


def do_block(sql: str) -> list[str]:
    """The SQL statements of a ``DO`` block's PL/pgSQL body (``EXECUTE 'text'`` included)."""
    match = _DO.match(sql)
    if not match:
        return []
    inner = []
    for piece in split_sql(match[2]):
        while (stripped := _PLPGSQL.sub("", piece, count=1)) != piece:
            piece = stripped
        if execute := _EXECUTE.match(piece):
            piece = " ".join(execute[1].replace("''", "'").split())
        if piece:
            inner += [piece, *do_block(piece)]
    return inner


Found = tuple[int | None, str, dict[str, str]]


def _statement_findings(
    statements: list[Sent], before: Catalog | None, in_transaction: bool
) -> list[Found]:
    """Findings of statements run on ``before`` (None: unknown, every table existing)."""
    created: set[str] = set()
    validated_checks: dict[str, str] = {}  # check name -> column
    not_null_columns: set[tuple[str, str]] = set()
    found: list[Found] = []

    def existing(table: str) -> bool:
        if table in created:
            return False
        return before is None or table in before.tables

    for index, (sql, line, in_block, batched) in enumerate(statements):
        if match := _CREATE_TABLE.match(sql):
            created.add(match[1])
        elif match := _CONCURRENTLY.match(sql):
            if in_transaction or in_block:
                detail = match[1].split()[0].upper() + " " + match[1].split()[-1].upper()
                found.append(
                    (line, "concurrent-in-transaction", {"table": match[2], "detail": detail})
                )
        elif (match := _CREATE_INDEX.match(sql)) and not match[1] and existing(match[2]):
            found.append((line, "concurrent-index", {"table": match[2]}))
        elif (match := _DROP_INDEX.match(sql)) and (table := _index_table(before, match[1])):
            if existing(table):
                found.append((line, "concurrent-drop-index", {"table": table, "detail": match[1]}))
        elif (match := _WRITE.match(sql)) and existing(match[2]):
            if not batched and not _batched(match[3], before, match[2]):
                detail = f"{match[1].upper()} {match[2]}"
                found.append((line, "unbatched-write", {"table": match[2], "detail": detail}))
        elif match := _ADD_VALUE.match(sql):
            later = " ".join(s.sql for s in statements[index + 1 :])
            if in_transaction and match[2] in later:
                found.append(
                    (line, "add-value-in-transaction", {"table": match[1], "detail": match[2]})
                )
        elif (match := _ALTER_TABLE.match(sql)) and existing(match[1]):
            found += _alter_findings(
                match[1], match[2], line, before, in_transaction, validated_checks, not_null_columns
            )
    return found


def _alter_findings(
    table: str,
    action: str,
    line: int | None,
    before: Catalog | None,
    in_transaction: bool,
    checks: dict[str, str],
    proven: set[tuple[str, str]],
) -> list[Found]:
    found: list[Found] = []
    not_valid = re.search(r"\bNOT VALID\b", action, re.I)
    if re.search(r"\bADD\b.*\bFOREIGN KEY\b", action, re.I) and not not_valid:
        found.append((line, "foreign-key-not-valid", {"table": table}))
    if _ADD_CHECK.search(action) and not not_valid:
        found.append((line, "check-not-valid", {"table": table}))
    if (match := _ADD_UNIQUE.search(action)) and not re.search(r"\bUSING INDEX\b", action, re.I):
        found.append((line, "unique-constraint", {"table": table, "detail": match[1].upper()}))
    for column, definition in _ADD_PLAIN_COLUMN.findall(action):
        if re.search(r"\bNOT NULL\b", definition, re.I) and not re.search(
            r"\bDEFAULT\b|\bGENERATED\b", definition, re.I
        ):
            found.append((line, "required-column", {"table": table, "detail": column}))
    if match := _CHECK_NOT_NULL.search(action):
        checks[match[1]] = match[2]
    if (match := _VALIDATE.search(action)) and match[1] in checks and not in_transaction:
        proven.add((table, checks[match[1]]))
    for column in _SET_NOT_NULL.findall(action):
        if (table, column) not in proven:
            found.append((line, "set-not-null", {"table": table}))
    for _column, default in _ADD_COLUMN.findall(action):
        default = default.strip()
        if not constant_default(default):
            found.append((line, "volatile-default", {"table": table, "detail": default}))
    for column, new_type, using in _TYPE.findall(action):
        old_type = _column_type(before, table, column)
        if using or old_type is None or not binary_compatible(old_type, new_type.strip()):
            detail = f"{old_type or '?'} -> {new_type.strip()}" + (" USING ..." if using else "")
            found.append((line, "type-rewrite", {"table": table, "detail": detail}))
    return found


def _batched(rest: str, before: Catalog | None, table: str) -> bool:
    """Whether an UPDATE/DELETE's WHERE bounds one batch: a LIMIT, a key range, or keys named."""
    where = re.search(r"\bWHERE\b(.*)$", rest, re.I | re.S)
    if where is None:
        return False
    if _BATCH.search(where[1]):
        return True
    keys = _primary_key(before, table)
    return any(
        re.search(rf"\b{key}\s*(=|IN\s*\()\s*('|%s|\$\d|\d|\{{)", where[1], re.I) for key in keys
    )


def _primary_key(before: Catalog | None, table: str) -> list[str]:
    if before is None:
        return []
    for definition in before.constraints.get(table, {}).values():
        if match := re.match(r"PRIMARY KEY \((.+)\)", definition):
            return [column.strip() for column in match[1].split(",")]
    return []


# A quoted identifier that needs no quotes, as peewee's own migrator writes them ("note").
_NEEDLESS_QUOTES = re.compile(r'"([a-z_][a-z0-9_]*)"')


def _unquoted(sql: str) -> str:
    """``sql`` with needless identifier quotes dropped, so the rules read both spellings."""
    return _NEEDLESS_QUOTES.sub(r"\1", sql)


def _index_table(before: Catalog | None, index: str) -> str | None:
    """The table of an index that existed before (unknown without a snapshot: "?")."""
    if before is None:
        return "?"
    known = before.indexes.get(index)
    return known.table if known else None


def _column_type(before: Catalog | None, table: str, column: str) -> str | None:
    if before is None:
        return None
    return next((c.type for c in before.tables.get(table, []) if c.name == column), None)


def _rollback_findings(
    statements: list[Sent], before: Catalog | None, after: Catalog | None
) -> list[Found]:
    """Drops in a rollback that no guard covers: of what existed before the migration."""
    found: list[Found] = []
    for sql, line, *_ in statements:
        if re.match(r"^(TRUNCATE|DELETE FROM)\b", sql, re.I):
            found.append((line, "rollback-drops-data", {"detail": f"rows ({sql[:40]}...)"}))
        elif match := _DROP_TABLE.match(sql):
            for table in (t.strip().removeprefix("public.") for t in match[1].split(",")):
                if after is None or before is None or table in before.tables:
                    found.append((line, "rollback-drops-data", {"detail": f"table {table}"}))
        elif (match := _ALTER_TABLE.match(sql)) and re.match(
            r"DROP (COLUMN )?(IF EXISTS )?\w+", match[2], re.I
        ):
            if re.match(r"DROP CONSTRAINT", match[2], re.I):
                continue
            table = match[1]
            for column in _DROP_COLUMN.findall(match[2]):
                if (
                    after is None
                    or before is None
                    or _column_type(before, table, column) is not None
                ):
                    found.append(
                        (line, "rollback-drops-data", {"detail": f"column {table}.{column}"})
                    )
    return found
