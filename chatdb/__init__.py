"""chatdb: the PostgreSQL home of an LLM chat backend's conversations.

The public names load on first use (PEP 562): ``import chatdb`` costs
nothing until one is touched, so the ``chatdb`` command starts with nothing
imported and answers Ctrl-C with one line from its very first moment.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names as _HOMES below, for type checkers (a test keeps them equal)
    from chatdb.api.accounting import TokenTotal, token_usage  # noqa: F401
    from chatdb.api.chats import (  # noqa: F401
        add_message,
        add_messages,
        create_thread,
        delete_thread,
        get_message,
        list_messages,
        list_threads,
    )
    from chatdb.api.connection import connect  # noqa: F401
    from chatdb.api.reindex import reindex_search  # noqa: F401
    from chatdb.api.search import SearchHit, search_messages  # noqa: F401
    from chatdb.api.search_limits import SearchResults, SearchTimeout  # noqa: F401
    from chatdb.schema.enums import Entity, ReasoningLevels, Task, TokenType  # noqa: F401
    from chatdb.schema.models import (  # noqa: F401
        AlembicVersion,
        ComplexityEstimation,
        Message,
        Thread,
        TokenConsumption,
        ToolCall,
        ToolSelection,
    )

__version__ = "0.1.0"

_HOMES = {
    "chatdb.api.accounting": ("TokenTotal", "token_usage"),
    "chatdb.api.chats": (
        "add_message",
        "add_messages",
        "create_thread",
        "delete_thread",
        "get_message",
        "list_messages",
        "list_threads",
    ),
    "chatdb.api.connection": ("connect",),
    "chatdb.api.reindex": ("reindex_search",),
    "chatdb.api.search": ("SearchHit", "search_messages"),
    "chatdb.api.search_limits": ("SearchResults", "SearchTimeout"),
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

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'chatdb' has no attribute {name!r}")
    value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
