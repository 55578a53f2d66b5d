"""The four enumerations of the chat schema.

Member names are the PostgreSQL enum labels: the legacy backend stored names,
so a member's name is exactly what the database holds. Values keep the old
lower-case spellings for code that displayed them; they never reach SQL.
Either spelling finds a member: ``Entity("USER")`` and ``Entity("user")``
are both ``Entity.USER``.
"""

from __future__ import annotations

import enum
from typing import TypeVar

from chatdb.errors import InvalidInput

E = TypeVar("E", bound=enum.Enum)


class Labelled(enum.Enum):
    """An enum whose members are also found by their database label (the name)."""

    @classmethod
    def _missing_(cls, value: object) -> Labelled | None:
        return cls.__members__.get(value) if isinstance(value, str) else None


class Entity(Labelled):
    """Who wrote a message."""

    USER = "user"
    AI_TOOL = "ai_tool"
    TOOL = "tool"
    AI_MESSAGE = "ai_message"


class Task(Labelled):
    """What an LLM call was made for."""

    CHAT_COMPLETION = "chat-completion"
    TOOL_SELECTION = "tool-selection"
    CALL_WITHIN_TOOL = "call-within-tool"


class TokenType(Labelled):
    """Which kind of tokens a consumption row counts."""

    INPUT_NONCACHED = "input-noncached"
    INPUT_CACHED = "input-cached"
    COMPLETION = "completion"


class ReasoningLevels(Labelled):
    """Reasoning effort chosen by the complexity estimator."""

    NONE = "none"
    MINIMAL = "minimal"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


def member(enum_class: type[E], value: object, what: str) -> E:
    """``value`` as a member of ``enum_class``, given a member or its label (``"USER"``).

    Anything else raises ``InvalidInput`` naming ``what`` (``"Message.entity"``)
    and the labels it may be, before any SQL is sent.
    """
    if isinstance(value, enum_class):
        return value
    if isinstance(value, str) and value in enum_class.__members__:
        return enum_class[value]
    raise InvalidInput(
        f"{what}: {value!r} is not a label of {enum_class.__name__}; expected one of "
        f"{', '.join(enum_class.__members__)}"
    )
