"""The one exception type the command line turns into a single clear line."""

from __future__ import annotations


class ChatdbError(Exception):
    """A problem the user can fix; its message says what happened and what to do."""
