"""Checking message content before it reaches the database.

The legacy search trigger parses the content of ``USER`` and ``AI_MESSAGE``
messages as ``jsonb`` and fails the whole statement (SQLSTATE 22P02) when it
is not JSON; PostgreSQL also refuses NUL characters in text and ``\\u0000`` or
unpaired surrogate escapes in ``jsonb``. Finding these in Python turns a failed
(and, in a bulk append, wasted) statement into a ``ValueError`` that names the
problem, raised before any SQL runs.
"""

from __future__ import annotations

import decimal
import json
from collections.abc import Mapping
from typing import Any

from chatdb.schema.enums import Entity, member

# Entities whose content the search trigger parses as JSON.
SEARCHABLE = frozenset({Entity.USER, Entity.AI_MESSAGE})
# PostgreSQL numeric: at most 131072 digits before the point, 16383 after.
_MAX_INT_DIGITS = 131072
_MAX_FRACTION_DIGITS = 16383
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False)


def as_entity(entity: Entity | str) -> Entity:
    """``entity`` as a member, from a member or its label (``"USER"``)."""
    return member(Entity, entity, "Message.entity")


def prepare_content(entity: Entity | str, content: Mapping[str, Any] | str) -> str:
    """The text to store for ``content``, or ``ValueError`` saying why it cannot be stored.

    ``content`` is the legacy JSON document (``{"role": ..., "content": ...}``) as a
    mapping or as JSON text. Text of entities other than ``USER`` and
    ``AI_MESSAGE`` is stored as given, JSON or not.
    """
    member = as_entity(entity)
    if isinstance(content, str):
        check_text(content, member)
        return content
    if not isinstance(content, Mapping):
        raise ValueError(
            f"message content must be a dict or a JSON string, not {type(content).__name__}"
        )
    try:
        text = _ENCODER.encode(content)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"message content cannot be written as JSON: {exc}") from exc
    check_text(text, member, from_mapping=True)
    return text


def check_text(text: str, entity: Entity, *, from_mapping: bool = False) -> None:
    """Raise ``ValueError`` if PostgreSQL or the search trigger would reject ``text``.

    Text that ``json.dumps`` just wrote from a mapping is JSON with numbers
    PostgreSQL takes; only its ``\\u`` escapes (``\\u0000``) need the full check.
    """
    if "\x00" in text:
        raise ValueError("message content contains a NUL character, which PostgreSQL cannot store")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"message content is not valid Unicode (unpaired surrogate at {exc.start})"
        ) from exc
    if entity not in SEARCHABLE or (from_mapping and "\\u" not in text):
        return
    try:
        document = json.loads(
            text, parse_constant=_reject_constant, parse_float=_number, parse_int=_number
        )
    except RecursionError as exc:
        raise ValueError(f"{entity.name} message content is nested too deeply") from exc
    except ValueError as exc:
        raise ValueError(
            f"{entity.name} message content must be JSON (the search index parses it), "
            f'e.g. {{"role": "user", "content": "..."}}: {exc}'
        ) from exc
    if "\\u" in text:
        _check_strings(document, entity)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _number(literal: str) -> decimal.Decimal:
    number = decimal.Decimal(literal)
    _sign, digits, exponent = number.as_tuple()
    too_long = not number.is_zero() and len(digits) + exponent > _MAX_INT_DIGITS
    if too_long or -exponent > _MAX_FRACTION_DIGITS:
        raise ValueError(f"number {literal[:20]}... is out of PostgreSQL's numeric range")
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
                raise ValueError(
                    f"{entity.name} message content has a \\u0000 escape, which jsonb rejects"
                )
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError(
                    f"{entity.name} message content has an unpaired surrogate escape, "
                    "which jsonb rejects"
                ) from exc
