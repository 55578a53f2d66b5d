"""The models' schema, built for real in a throwaway ("shadow") database.

``chatdb create`` compares catalogs, not field names: what PostgreSQL makes
of the models (every ``pw.Model`` subclass defined in the models module,
their enum types, server defaults, foreign keys, indexes, and the statements
of each model's ``Meta.schema_sql``) against what the migrations leave.
"""

from __future__ import annotations

import contextlib
import importlib
import uuid
from collections.abc import Iterator
from types import ModuleType

import peewee as pw
import psycopg2

from chatdb.catalog import Catalog, read_catalog
from chatdb.db.connect import execute_autocommit, open_database
from chatdb.db.urls import mask_password, with_database
from chatdb.errors import ChatdbError
from chatdb.schema.fields import EnumField


def load_models(module_name: str) -> list[type[pw.Model]]:
    """Every model class defined in the module, in definition order."""
    try:
        module: ModuleType = importlib.import_module(module_name)
    except Exception as exc:
        raise ChatdbError(
            f"cannot import the models module {module_name!r}: {type(exc).__name__}: {exc}; "
            "pass an importable module with --models"
        ) from exc
    found = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, pw.Model)
        and value.__module__ == module.__name__
    ]
    if not found:
        raise ChatdbError(f"the models module {module_name} defines no peewee model")
    return found


def enum_types(models: list[type[pw.Model]]) -> dict[str, list[str]]:
    """The enum types the models' fields need, by name; one set of labels per type."""
    types: dict[str, list[str]] = {}
    for model in models:
        for field in model._meta.sorted_fields:
            if not isinstance(field, EnumField):
                continue
            known = types.setdefault(field.field_type, field.labels)
            if known != field.labels:
                raise ChatdbError(
                    f"{model.__name__}.{field.name}: enum type {field.field_type} is declared "
                    f"with labels {', '.join(field.labels)} and elsewhere {', '.join(known)}; "
                    "use one enum class per type"
                )
    return types


def build(database: pw.Database, models: list[type[pw.Model]]) -> None:
    """Create the models' schema in an empty database."""
    for name, labels in enum_types(models).items():
        quoted = ", ".join("'" + label.replace("'", "''") + "'" for label in labels)
        database.execute_sql(f"CREATE TYPE {name} AS ENUM ({quoted})")
    with database.bind_ctx(models, bind_refs=False, bind_backrefs=False):
        database.create_tables(models, safe=False)
    for model in pw.sort_models(models):  # type: ignore[attr-defined]  # not in the stubs
        for statement in getattr(model._meta, "schema_sql", ()):
            database.execute_sql(statement)


@contextlib.contextmanager
def scratch_database(server_url: str, purpose: str) -> Iterator[str]:
    """A new empty database on the server of ``server_url``, always dropped afterwards."""
    name = f"chatdb_{purpose}_{uuid.uuid4().hex[:12]}"
    try:
        execute_autocommit(server_url, f'CREATE DATABASE "{name}" TEMPLATE template0')
    except psycopg2.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ChatdbError(
            f"cannot create a scratch database on {mask_password(server_url)}: {reason}; "
            "chatdb create needs a server where it may CREATE DATABASE (by default the "
            "embedded one: leave out --database and DATABASE_URL)"
        ) from exc
    try:
        yield with_database(server_url, name)
    finally:
        execute_autocommit(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def models_catalog(server_url: str, module_name: str) -> Catalog:
    """The catalog the models describe, read from a shadow database."""
    models = load_models(module_name)
    with scratch_database(server_url, "shadow") as url:
        database = open_database(url)
        try:
            build(database, models)
            return read_catalog(database)
        except pw.DatabaseError as exc:
            raise ChatdbError(
                f"the models of {module_name} do not build: {str(exc).strip().splitlines()[0]}; "
                "fix the model (or its Meta.schema_sql)"
            ) from exc
        finally:
            database.close()
