"""The four enumerations of the chat schema.

Member names are the PostgreSQL enum labels: the legacy backend stored names,
so a member's name is exactly what the database holds. Values keep the old
lower-case spellings for code that displayed them; they never reach SQL.
"""

from __future__ import annotations

import enum


class Entity(enum.Enum):
    """Who wrote a message."""

    USER = "user"
    AI_TOOL = "ai_tool"
    TOOL = "tool"
    AI_MESSAGE = "ai_message"


class Task(enum.Enum):
    """What an LLM call was made for."""

    CHAT_COMPLETION = "chat-completion"
    TOOL_SELECTION = "tool-selection"
    CALL_WITHIN_TOOL = "call-within-tool"


class TokenType(enum.Enum):
    """Which kind of tokens a consumption row counts."""

    INPUT_NONCACHED = "input-noncached"
    INPUT_CACHED = "input-cached"
    COMPLETION = "completion"


class ReasoningLevels(enum.Enum):
    """Reasoning effort chosen by the complexity estimator."""

    NONE = "none"
    MINIMAL = "minimal"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
