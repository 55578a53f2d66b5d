"""Function bodies chatdb accepts, where each comes from, and how an unknown one differs.

A catalog compares function bodies by fingerprint (:func:`fingerprint`: the
body's tokens, comments and layout aside). Some functions legitimately exist
in more than one wording: the search trigger function of a database built
by the legacy backend's own Alembic chain carries that backend's text, one
chatdb creates carries chatdb's. Each wording is listed here with its
origin, and tests prove every entry against its origin (the real legacy
dump's ``prosrc``, the baseline migration's) and against the behaviour the
contract describes. Any other body is refused, and :func:`nearest` says
which known body it is closest to and where it first departs from it.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass
from functools import cached_property

from chatdb.schema.models import SEARCH_FUNCTION as SEARCH_FUNCTION_DDL

SEARCH_FUNCTION = "update_messages_search_vector()"

# A literal or quoted identifier (kept whole), a comment, whitespace, or a token.
_TOKEN = re.compile(
    r"('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\")|(--[^\n]*|/\*.*?\*/|\s+)|(\w+|::|:=|->>|->|\S)", re.S
)


def tokens(source: str) -> list[str]:
    """The body's tokens: comments and whitespace outside literals dropped."""
    return [m.group(1) or m.group(3) for m in _TOKEN.finditer(source) if not m.group(2)]


def fingerprint(source: str) -> str:
    """What a function body does, as a short hash: comments and whitespace do not count."""
    return hashlib.sha256("".join(tokens(source)).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class KnownBody:
    """One accepted wording of a function: its ``prosrc``, exactly, and where it comes from."""

    function: str
    label: str
    origin: str
    source: str

    @cached_property
    def fingerprint(self) -> str:
        return fingerprint(self.source)

    def create_sql(self, schema: str = "public") -> str:
        """The statement that puts this body back (a trigger function taking no arguments)."""
        name = self.function.removesuffix("()")
        return (
            f"CREATE OR REPLACE FUNCTION {schema}.{name}() RETURNS trigger "
            f"LANGUAGE plpgsql AS $chatdb_body${self.source}$chatdb_body$"
        )


# The legacy backend's text, character for character as pg_dump shows it in a
# database its Alembic chain built (revision cd5a73ea91db created it; no later
# revision touched it). Every database handed over carries this prosrc.
_LEGACY_SEARCH_SOURCE = """
        BEGIN
            NEW.search_vector := CASE
                WHEN NEW.entity IN ('USER', 'AI_MESSAGE') THEN
                    to_tsvector('english',
                        COALESCE(
                            CASE
                                WHEN NEW.content::jsonb ? 'content' THEN
                                    NEW.content::jsonb->>'content'
                                ELSE ''
                            END,
                            ''
                        )
                    )
                ELSE to_tsvector('english', '')
            END;
            RETURN NEW;
        END;
        """

# chatdb's own text: the models' (migrations/001_baseline.py keeps a frozen copy,
# which a test proves is the same prosrc).
_CHATDB_SEARCH_SOURCE = SEARCH_FUNCTION_DDL.split("$fn$")[1]

LEGACY_SEARCH_BODY = KnownBody(
    SEARCH_FUNCTION,
    "the legacy backend's",
    "the legacy Alembic revision cd5a73ea91db, as every database its chain built carries it",
    _LEGACY_SEARCH_SOURCE,
)
CHATDB_SEARCH_BODY = KnownBody(
    SEARCH_FUNCTION,
    "chatdb's",
    "chatdb's baseline migration 001_baseline",
    _CHATDB_SEARCH_SOURCE,
)
KNOWN_BODIES: tuple[KnownBody, ...] = (LEGACY_SEARCH_BODY, CHATDB_SEARCH_BODY)


def known(function: str) -> list[KnownBody]:
    return [body for body in KNOWN_BODIES if body.function == function]


def same_body(function: str, want: str, have: str) -> bool:
    """Whether two fingerprints are the same function: equal, or both known wordings of it."""
    if want == have:
        return True
    prints = {body.fingerprint for body in known(function)}
    return {want, have} <= prints


def canonical(function: str, fingerprint_: str) -> str:
    """One fingerprint per set of interchangeable wordings (for comparing catalog parts)."""
    prints = sorted(body.fingerprint for body in known(function))
    return prints[0] if fingerprint_ in prints else fingerprint_


@dataclass(frozen=True)
class Departure:
    """Where a body first departs from the known body it is nearest to."""

    body: KnownBody
    statement: int  # 1-based, counting top-level ``;``-separated statements
    found: str
    expected: str
    token_found: str  # the first token that differs ("" past the end)
    token_expected: str


def nearest(function: str, source: str, want: str) -> Departure | None:
    """How ``source`` departs from the known body (``want`` or an equal) nearest to it."""
    candidates = [b for b in known(function) if same_body(function, want, b.fingerprint)]
    if not candidates:
        return None
    have = tokens(source)
    best = max(candidates, key=lambda b: _likeness(have, tokens(b.source)))
    mine, theirs = _statements(have), _statements(tokens(best.source))
    for index in range(max(len(mine), len(theirs))):
        found = mine[index] if index < len(mine) else []
        expected = theirs[index] if index < len(theirs) else []
        if found != expected:
            at = next(i for i in range(len(found) + 1) if _at(found, i) != _at(expected, i))
            return Departure(
                best, index + 1, _words(found), _words(expected), _at(found, at), _at(expected, at)
            )
    return None  # the same tokens: no departure at all


def _likeness(a: list[str], b: list[str]) -> float:
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def _at(toks: list[str], index: int) -> str:
    return toks[index] if index < len(toks) else ""


def _statements(toks: list[str]) -> list[list[str]]:
    """Top-level statements: split on ``;``, with ``BEGIN`` opening the first."""
    out: list[list[str]] = [[]]
    for token in toks:
        if token == ";":
            out.append([])
        else:
            out[-1].append(token)
    return [s for s in out if s]


def _words(toks: list[str]) -> str:
    """Tokens back into readable SQL: words spaced, ``a.b``, ``x::t`` and ``f(x)`` tight."""
    text = " ".join(toks)
    text = re.sub(r" ?(::|->>|->|\.) ?", r"\1", text)
    return re.sub(r" (?=[,)])|(?<=\() |(?<=\w) (?=\()", "", text)
