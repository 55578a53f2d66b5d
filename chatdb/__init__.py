"""chatdb: the PostgreSQL home of an LLM chat backend's conversations.

The public names load on first use (PEP 562): ``import chatdb`` costs
nothing until one is touched, so the ``chatdb`` command starts with nothing
imported and answers Ctrl-C with one line from its very first moment. The
names are written out three times, for type checkers (the imports below, and
``__all__``) and for the lazy loading (``_HOMES``); a test keeps them equal.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chatdb.api.accounting import (
        TokenTotal,
        token_usage,
    )
    from chatdb.api.batch import (
        ComplexityIn,
        NewMessage,
        TokenUsageIn,
        ToolCallIn,
    )
    from chatdb.api.chats import (
        add_message,
        add_message_details,
        add_messages,
        create_thread,
        delete_message,
        delete_thread,
        get_message,
        get_thread,
        list_messages,
        list_threads,
        update_thread,
    )
    from chatdb.api.connection import connect
    from chatdb.api.database import Database
    from chatdb.api.pages import (
        MessageRow,
        ThreadRow,
    )
    from chatdb.api.reindex import (
        Progress,
        reindex_search,
    )
    from chatdb.api.search import (
        SearchHit,
        search_messages,
    )
    from chatdb.api.search_limits import (
        SearchResults,
        SearchTimeout,
    )
    from chatdb.errors import (
        ChatdbError,
        Conflict,
        ConnectionFailed,
        ConnectionLost,
        DataLossRefused,
        DriftDetected,
        HistoryBroken,
        InvalidInput,
        LockNotObtained,
        NoDatabase,
        NotFound,
        PrivilegeMissing,
        SnapshotUnreadable,
        TamperDetected,
        TargetReadOnly,
    )
    from chatdb.schema.enums import (
        Entity,
        ReasoningLevels,
        Task,
        TokenType,
    )
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
    "ChatdbError",
    "ComplexityEstimation",
    "ComplexityIn",
    "Conflict",
    "ConnectionFailed",
    "ConnectionLost",
    "DataLossRefused",
    "Database",
    "DriftDetected",
    "Entity",
    "HistoryBroken",
    "InvalidInput",
    "LockNotObtained",
    "Message",
    "MessageRow",
    "NewMessage",
    "NoDatabase",
    "NotFound",
    "PrivilegeMissing",
    "Progress",
    "ReasoningLevels",
    "SearchHit",
    "SearchResults",
    "SearchTimeout",
    "SnapshotUnreadable",
    "TamperDetected",
    "TargetReadOnly",
    "Task",
    "Thread",
    "ThreadRow",
    "TokenConsumption",
    "TokenTotal",
    "TokenType",
    "TokenUsageIn",
    "ToolCall",
    "ToolCallIn",
    "ToolSelection",
    "add_message",
    "add_message_details",
    "add_messages",
    "connect",
    "create_thread",
    "delete_message",
    "delete_thread",
    "get_message",
    "get_thread",
    "list_messages",
    "list_threads",
    "reindex_search",
    "search_messages",
    "token_usage",
    "update_thread",
]

_HOMES = {
    "chatdb.api.accounting": ("TokenTotal", "token_usage"),
    "chatdb.api.batch": ("ComplexityIn", "NewMessage", "TokenUsageIn", "ToolCallIn"),
    "chatdb.api.chats": (
        "add_message",
        "add_message_details",
        "add_messages",
        "create_thread",
        "delete_message",
        "delete_thread",
        "get_message",
        "get_thread",
        "list_messages",
        "list_threads",
        "update_thread",
    ),
    "chatdb.api.connection": ("connect",),
    "chatdb.api.database": ("Database",),
    "chatdb.api.pages": ("MessageRow", "ThreadRow"),
    "chatdb.api.reindex": ("Progress", "reindex_search"),
    "chatdb.api.search": ("SearchHit", "search_messages"),
    "chatdb.api.search_limits": ("SearchResults", "SearchTimeout"),
    "chatdb.errors": (
        "ChatdbError",
        "Conflict",
        "ConnectionFailed",
        "ConnectionLost",
        "DataLossRefused",
        "DriftDetected",
        "HistoryBroken",
        "InvalidInput",
        "LockNotObtained",
        "NoDatabase",
        "NotFound",
        "PrivilegeMissing",
        "SnapshotUnreadable",
        "TamperDetected",
        "TargetReadOnly",
    ),
    "chatdb.schema.enums": ("Entity", "ReasoningLevels", "Task", "TokenType"),
    "chatdb.schema.models": (
        "AlembicVersion",
        "ComplexityEstimation",
        "Message",
        "Thread",
        "TokenConsumption",
        "ToolCall",
        "ToolSelection",
    ),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'chatdb' has no attribute {name!r}")
    value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
