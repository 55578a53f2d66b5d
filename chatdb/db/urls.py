"""Database URLs: parsing them into libpq parameters, pointing them elsewhere, masking them.

A password never leaves this module: what chatdb prints about a target is
:func:`mask_password`'s rendering. It follows the URL as libpq splits it (the
user info ends at the first ``@``, before any ``/``; there is no fragment),
checks that libpq parses it, and replaces the password, in the user info or
in the query string, by ``***``. A URL that does not parse, or that parses
ambiguously (an unencoded ``@``, ``:`` or ``/`` in the password moves part
of it into the host, port or database name), is shown as its scheme alone.
libpq's own parse errors quote the offending text, so only their gist is
kept, and they are never chained to chatdb's errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg2
from psycopg2.extensions import parse_dsn

from chatdb.errors import ChatdbError

_SCHEMES = ("postgres", "postgresql")
_SECRET_KEYS = frozenset({"password", "sslpassword"})
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
EXPECTED = "expected postgresql://user:password@host:port/dbname"
ENCODE = "percent-encode @ : / # ? % in the password (%40 %3A %2F %23 %3F %25)"
# The gist of libpq's URI parse errors, whose text quotes what it could not parse.
_LIBPQ_REASONS = (
    ("invalid percent-encoded token", f"a % is not followed by two hex digits; {ENCODE}"),
    ('matching "]"', "an IPv6 host opened with [ is not closed with ]"),
    ("invalid URI query parameter", "unknown query parameter (names are lower case)"),
    ("invalid connection option", "unknown connection option"),
    ("forbidden value %00", "it holds %00"),
    ("unexpected character", f"an unexpected character after the host; {ENCODE}"),
)


@dataclass(frozen=True)
class _Parts:
    """A postgres URL as libpq splits it."""

    scheme: str
    userinfo: str | None
    host: str
    path: str
    query: str


class _Malformed(Exception):
    """Why a URL cannot be used; the reason never quotes the URL."""


def _split(url: str) -> _Parts:
    scheme, separator, rest = url.partition("://")
    if not separator or scheme not in _SCHEMES:
        if "=" in url and "://" not in url:
            raise _Malformed(f"a key=value connection string is not accepted; {EXPECTED}")
        raise _Malformed(f"not a postgresql:// URL; {EXPECTED}")
    userinfo = None
    end = re.search("[@/]", rest)
    if end and end.group() == "@":
        userinfo, rest = rest[: end.start()], rest[end.end() :]
    hostpath, question, query = rest.partition("?")
    host, slash, path = hostpath.partition("/")
    return _Parts(scheme, userinfo, host, slash + path, question + query)


def _parse(url: str) -> tuple[_Parts, dict[str, str]]:
    """The URL's parts and libpq parameters, or :class:`_Malformed`."""
    parts = _split(url)
    try:
        params = parse_dsn(url)
    except psycopg2.ProgrammingError as exc:
        raise _Malformed(f"{_gist(exc)}; {EXPECTED}") from None
    if "@" in parts.host + parts.path:
        raise _Malformed(f"an @ follows its user info; {ENCODE}")
    if not all(part.isdigit() for part in params.get("port", "0").split(",")):
        raise _Malformed(f"the port is not a number; {ENCODE}")
    return parts, params


def _gist(exc: Exception) -> str:
    text = (str(exc).strip().splitlines() or [""])[0]
    for needle, reason in _LIBPQ_REASONS:
        if needle in text:
            return reason
    return re.split('[:"]', text, maxsplit=1)[0].strip() or "libpq cannot parse it"


def _hidden(url: str) -> str:
    """What is shown of a URL that does not parse: its scheme, nothing after it."""
    scheme = url.partition("://")[0]
    return f"{scheme}://***" if "://" in url and _SCHEME.fullmatch(scheme) else "***"


def mask_password(url: str) -> str:
    """The URL with any password replaced by ``***``, safe to print; see the module docstring."""
    try:
        parts, _ = _parse(url)
    except _Malformed:
        return _hidden(url)
    userinfo = ""
    if parts.userinfo is not None:
        user, colon, _ = parts.userinfo.partition(":")
        userinfo = f"{user}:***@" if colon else f"{user}@"
    query = "&".join(
        f"{key}=***" if unquote(key) in _SECRET_KEYS else f"{key}{equals}{value}"
        for key, equals, value in (item.partition("=") for item in parts.query[1:].split("&"))
    )
    return f"{parts.scheme}://{userinfo}{parts.host}{parts.path}" + (f"?{query}" if query else "")


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` on the same server."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def connect_params(url: str) -> dict[str, str]:
    """libpq keywords for ``url``, or a ChatdbError saying why it is malformed."""
    try:
        return _parse(url)[1]
    except _Malformed as exc:
        raise ChatdbError(f"malformed database URL {_hidden(url)!r}: {exc}") from None
