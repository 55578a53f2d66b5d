"""Checking the data API's arguments before any SQL: one ``InvalidInput`` line per problem."""

from __future__ import annotations

import datetime as dt
import uuid

from chatdb.errors import InvalidInput

# PostgreSQL's LIMIT and OFFSET are bigints; past this the server would refuse them.
MAX_ROWS = (1 << 63) - 1


def as_uuid(value: object, name: str) -> uuid.UUID:
    """``value`` as a UUID (from a UUID or its text), else ``InvalidInput`` naming ``name``."""
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise InvalidInput(f"{name} {value!r} is not a UUID; pass a uuid.UUID or its text")


def check_limit(limit: object) -> int:
    """``limit`` if it is a positive integer (a page size); ``InvalidInput`` otherwise."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_ROWS:
        raise InvalidInput(f"limit must be a positive integer below 2**63, got {limit!r}")
    return limit


def check_offset(offset: object) -> int:
    """``offset`` if it is a non-negative integer; ``InvalidInput`` otherwise."""
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_ROWS:
        raise InvalidInput(f"offset must be a non-negative integer below 2**63, got {offset!r}")
    return offset


def aware(moment: object, name: str) -> dt.datetime:
    """``moment`` if it is a timezone-aware datetime; ``InvalidInput`` otherwise."""
    if not isinstance(moment, dt.datetime):
        raise InvalidInput(
            f"{name} must be a timezone-aware datetime, not {type(moment).__name__} {moment!r}"
        )
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput(f"{name} must be a timezone-aware datetime, got {moment.isoformat()}")
    return moment


def check_text(value: object, name: str) -> str:
    """``value`` if it is text PostgreSQL can store (no NUL); ``InvalidInput`` otherwise."""
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string, not {type(value).__name__}")
    if "\x00" in value:
        raise InvalidInput(f"{name} contains a NUL character, which PostgreSQL cannot store")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{name} is not valid Unicode (an unpaired surrogate)") from None
    return value
