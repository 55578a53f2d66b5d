"""Checking message content before it reaches the database.

The legacy search trigger parses the content of ``USER`` and ``AI_MESSAGE``
messages as ``jsonb`` and fails the whole statement (SQLSTATE 22P02) when it
is not JSON; PostgreSQL also refuses NUL characters in text and ``\\u0000`` or
unpaired surrogate escapes in ``jsonb``. Finding these in Python turns a failed
(and, in a bulk append, wasted) statement into an ``InvalidInput`` (a
``ValueError``) that names the problem, raised before any SQL runs.

Content goes in as a mapping (or JSON text) and comes back as a dict: what is
stored as a JSON object is read as one (:func:`read_json_text`), so a dict
round-trips unchanged.

Two limits are checked the same way: a document nested too deeply for
Python's JSON encoder and decoder (about a thousand levels), and text whose
search vector could exceed PostgreSQL's 1 MB limit on a ``tsvector``
(:func:`check_vector_size`).
"""

from __future__ import annotations

import decimal
import json
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from chatdb.errors import InvalidInput
from chatdb.schema.enums import Entity, member

# Labels of the entities whose content the search trigger parses as JSON. Labels, not
# members: removing a label from the enum (to write its migration) must not break imports.
SEARCHABLE = frozenset({"USER", "AI_MESSAGE"})
# PostgreSQL numeric: at most 131072 digits before the point, 16383 after.
_MAX_INT_DIGITS = 131072
_MAX_FRACTION_DIGITS = 16383
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False)
_LOOSE_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)
# PostgreSQL's limit on the lexemes and positions of one tsvector (MAXSTRPOS), and on
# the positions it keeps per lexeme (MAXNUMPOS).
TSVECTOR_LIMIT = (1 << 20) - 1
_MAX_POSITIONS = 256
# Below this many bytes of text no search vector can reach the limit (see check_vector_size).
_SMALL_TEXT = TSVECTOR_LIMIT // 13
# Only ASCII white space: PostgreSQL's parser keeps, for example, U+0085 inside a word.
_CHUNK = re.compile(r"[^ \t\n\r\f\v]+")
_SEPARATOR = re.compile(r"[^\w]|_")


def as_entity(entity: Entity | str) -> Entity:
    """``entity`` as a member, from a member or its label (``"USER"``)."""
    return member(Entity, entity, "Message.entity")


def prepare_content(entity: Entity | str, content: Mapping[str, Any] | str) -> str:
    """The text to store for ``content``, or ``InvalidInput`` saying why it cannot be stored.

    ``content`` is the legacy JSON document (``{"role": ..., "content": ...}``) as a
    mapping or as JSON text. Text of entities other than ``USER`` and
    ``AI_MESSAGE`` is stored as given, JSON or not.
    """
    member = as_entity(entity)
    if isinstance(content, str):
        check_text(content, member)
        return content
    if not isinstance(content, Mapping):
        raise InvalidInput(
            f"message content must be a dict or a JSON string, not {type(content).__name__}"
        )
    text = to_json(content, "message content")
    check_text(text, member, from_mapping=True)
    if member.name in SEARCHABLE:
        check_vector_size(content)
    return text


def read_json_text(text: str | None) -> dict[str, Any] | str | None:
    """Stored text as the caller gave it: a JSON object as a dict, any other text as is."""
    if text is None or not text.lstrip().startswith("{"):
        return text
    try:
        document = json.loads(text)
    except ValueError:
        return text
    return document if isinstance(document, dict) else text


def to_json(value: Any, what: str) -> str:
    """``value`` as JSON text, or ``InvalidInput`` naming ``what`` could not be written."""
    try:
        return _ENCODER.encode(value)
    except RecursionError:
        raise InvalidInput(f"{what} is nested too deeply to be written as JSON") from None
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{what} cannot be written as JSON: {exc}") from exc


def check_text(text: str, entity: Entity, *, from_mapping: bool = False) -> None:
    """Raise ``InvalidInput`` if PostgreSQL or the search trigger would reject ``text``.

    Text that ``json.dumps`` just wrote from a mapping is JSON with numbers
    PostgreSQL takes; only its ``\\u`` escapes (``\\u0000``) need the full check.
    """
    if "\x00" in text:
        raise InvalidInput(
            "message content contains a NUL character, which PostgreSQL cannot store"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(
            f"message content is not valid Unicode (unpaired surrogate at {exc.start})"
        ) from exc
    if entity.name not in SEARCHABLE or (from_mapping and "\\u" not in text):
        return
    try:
        document = json.loads(
            text, parse_constant=_reject_constant, parse_float=_number, parse_int=_number
        )
    except RecursionError:
        raise InvalidInput(f"{entity.name} message content is nested too deeply") from None
    except ValueError as exc:
        raise InvalidInput(
            f"{entity.name} message content must be JSON (the search index parses it), "
            f'e.g. {{"role": "user", "content": "..."}}: {exc}'
        ) from exc
    if not isinstance(document, dict):
        raise InvalidInput(
            f"{entity.name} message content must be a JSON object, "
            f'e.g. {{"role": "user", "content": "..."}}, not {_json_kind(document)} '
            f"({text[:40]!r})"
        )
    if "\\u" in text:
        _check_strings(document, entity)
    check_vector_size(document)


def check_vector_size(document: Any) -> None:
    """``InvalidInput`` if the search vector of ``document`` could pass PostgreSQL's 1 MB limit.

    The trigger indexes ``document ->> 'content'``. PostgreSQL counts, per
    distinct lexeme, its bytes, up to 3 of alignment and length, and 2 per
    position (at most 256). Lexemes never span white space, and one chunk of
    ``b`` bytes with ``s`` separators yields at most ``2 + s`` lexemes of at
    most ``3b`` bytes in all (a URL gives URL, host and path; a hyphenated word
    itself and its parts). Summing that over the distinct chunks bounds the
    vector from above without PostgreSQL's parser: text under ``_SMALL_TEXT``
    bytes always passes, and real prose far beyond it (a 200 kB paper bounds
    to about 0.4 MB); only text that could really reach the limit is refused.
    """
    if not isinstance(document, Mapping) or document.get("content") is None:
        return
    value = document["content"]
    # jsonb writes a non-string value as JSON text (numbers parsed here are Decimals).
    text = value if isinstance(value, str) else _LOOSE_ENCODER.encode(value)
    if len(text) * 4 < _SMALL_TEXT or len(text.encode("utf-8")) < _SMALL_TEXT:
        return
    bound = vector_bound(text)
    if bound > TSVECTOR_LIMIT:
        raise InvalidInput(
            f"message content's text is too large to index for search: its search vector "
            f"could exceed PostgreSQL's 1 MB tsvector limit (bound {bound:,} bytes); "
            "split it into several messages or store it as a file"
        )


def vector_bound(text: str) -> int:
    """An upper bound of the bytes PostgreSQL counts against the limit for ``text``'s vector."""
    bound = 0
    for chunk, count in Counter(_CHUNK.findall(text)).items():
        lexemes = 2 + len(_SEPARATOR.findall(chunk))
        bound += 3 * len(chunk.encode("utf-8")) + lexemes * (3 + 2 * min(count, _MAX_POSITIONS))
    return bound


def _json_kind(value: Any) -> str:
    """The JSON name of a parsed value's type (null, array, string, ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    kinds: dict[type, str] = {list: "an array", str: "a string"}
    return kinds.get(type(value), "a number")


def _reject_constant(name: str) -> Any:
    raise InvalidInput(f"{name} is not valid JSON")


def _number(literal: str) -> decimal.Decimal:
    number = decimal.Decimal(literal)
    _sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int), "JSON numbers are finite (NaN and Infinity are refused)"
    too_long = not number.is_zero() and len(digits) + exponent > _MAX_INT_DIGITS
    if too_long or -exponent > _MAX_FRACTION_DIGITS:
        raise InvalidInput(f"number {literal[:20]}... is out of PostgreSQL's numeric range")
    return number


def _check_strings(document: Any, entity: Entity) -> None:
    """``\\u0000`` and unpaired surrogate escapes parse in Python but not in ``jsonb``."""
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                raise InvalidInput(
                    f"{entity.name} message content has a \\u0000 escape, which jsonb rejects"
                )
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InvalidInput(
                    f"{entity.name} message content has an unpaired surrogate escape, "
                    "which jsonb rejects"
                ) from exc
