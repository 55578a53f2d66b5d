"""Database URLs: parsing them into libpq parameters, pointing them elsewhere, masking them.

A password never leaves this module unmasked: everything chatdb prints about
a target goes through :func:`mask_password`.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

import psycopg2
from psycopg2.extensions import parse_dsn

from chatdb.errors import ChatdbError

_SCHEMES = ("postgres", "postgresql")


def mask_password(url: str) -> str:
    """The URL with any password replaced by ``***``, safe to print."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url)
    query = re.sub(r"(password=)[^&]*", r"\1***", parts.query)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostinfo = netloc.rpartition("@")
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{hostinfo}"
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` on the same server."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def connect_params(url: str) -> dict[str, str]:
    """libpq keywords for ``url``, or a ChatdbError saying why it is malformed."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in _SCHEMES:
        raise ChatdbError(
            f"malformed database URL {mask_password(url)!r}: expected "
            "postgresql://user:password@host:port/dbname"
        )
    try:
        params = parse_dsn(url)
    except psycopg2.ProgrammingError as exc:
        reason = str(exc).strip().splitlines()[0]
        raise ChatdbError(
            f"malformed database URL {mask_password(url)!r}: {reason}; expected "
            "postgresql://user:password@host:port/dbname"
        ) from exc
    if not all(part.isdigit() for part in params.get("port", "0").split(",")):
        raise ChatdbError(
            f"malformed database URL {mask_password(url)!r}: port {params['port']!r} is not "
            "a number; expected postgresql://user:password@host:port/dbname"
        )
    return params
