"""chatdb: the PostgreSQL home of an LLM chat backend's conversations."""

from chatdb.api.accounting import TokenTotal, token_usage
from chatdb.api.chats import (
    add_message,
    add_messages,
    create_thread,
    delete_thread,
    get_message,
    list_messages,
    list_threads,
)
from chatdb.api.connection import connect
from chatdb.api.reindex import reindex_search
from chatdb.api.search import SearchHit, search_messages
from chatdb.schema.enums import Entity, ReasoningLevels, Task, TokenType
from chatdb.schema.models import (
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
