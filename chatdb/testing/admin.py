"""Creating and dropping whole throwaway databases: what test suites and benchmarks do."""

from __future__ import annotations

import uuid

from psycopg2 import sql

from chatdb.db.connect import execute_autocommit
from chatdb.db.urls import connect_params, with_database


def create_database(
    admin_url: str, prefix: str, template: str = "template0", *, file_copy: bool = False
) -> str:
    """A new database named ``prefix_<random>``, copied from ``template``; its URL.

    ``file_copy`` copies files instead of writing WAL: faster for a large template.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
        sql.Identifier(name), sql.Identifier(template)
    )
    if file_copy:
        statement += sql.SQL(" STRATEGY FILE_COPY")
    execute_autocommit(admin_url, statement)
    return with_database(admin_url, name)


def drop_database(admin_url: str, url: str) -> None:
    """Drop ``url``'s database, whoever is still connected to it."""
    name = connect_params(url)["dbname"]
    execute_autocommit(
        admin_url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    )
