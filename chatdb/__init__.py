"""chatdb: the PostgreSQL home of an LLM chat backend's conversations."""

from chatdb.enums import Entity, ReasoningLevels, Task, TokenType
from chatdb.models import (
    AlembicVersion,
    ComplexityEstimation,
    Message,
    Thread,
    TokenConsumption,
    ToolCall,
    ToolSelection,
)

__version__ = "0.1.0"

__all__ = [
    "AlembicVersion",
    "ComplexityEstimation",
    "Entity",
    "Message",
    "ReasoningLevels",
    "Task",
    "Thread",
    "TokenConsumption",
    "TokenType",
    "ToolCall",
    "ToolSelection",
]
