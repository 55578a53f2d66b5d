"""chatdb: the PostgreSQL home of an LLM chat backend's conversations."""

from chatdb.accounting import TokenTotal, token_usage
from chatdb.chat import (
    add_message,
    add_messages,
    create_thread,
    delete_thread,
    get_message,
    list_messages,
    list_threads,
)
from chatdb.connection import connect
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
from chatdb.reindex import reindex_search
from chatdb.search import SearchHit, search_messages

__version__ = "0.1.0"

__all__ = [
    "AlembicVersion",
    "ComplexityEstimation",
    "Entity",
    "Message",
    "ReasoningLevels",
    "SearchHit",
    "Task",
    "Thread",
    "TokenConsumption",
    "TokenTotal",
    "TokenType",
    "ToolCall",
    "ToolSelection",
    "add_message",
    "add_messages",
    "connect",
    "create_thread",
    "delete_thread",
    "get_message",
    "list_messages",
    "list_threads",
    "reindex_search",
    "search_messages",
    "token_usage",
]
