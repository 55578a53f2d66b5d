"""The catalog model: what of a schema decides whether two databases are interchangeable.

A :class:`Catalog` holds enum labels, columns (order, type, nullability,
default), constraints, indexes, triggers (definition and whether they fire),
functions (signature, result, language, attributes, and a fingerprint of
what the body does) and extensions. It is read from ``pg_catalog``
(:mod:`chatdb.catalog.reader`), stored as JSON beside the migrations
(:mod:`chatdb.catalog.snapshots`) and compared (:mod:`chatdb.catalog.diff`).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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
NOT_NULL_CHECK = re.compile(r"CHECK \(\((\w+) IS NOT NULL\)\)(?: NOT VALID)?")

# Prefixes of what an online type change (chatdb.migrate.online) keeps while it runs:
# the new column, and the function and trigger that keep it in step with the old one.
ONLINE_COLUMN_PREFIX = "chatdb_new_"
ONLINE_SYNC_PREFIX = "chatdb_sync_"


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
