"""Defaults the command line shows in ``--help`` without loading the migration engine."""

from __future__ import annotations

DEFAULT_LOCK_TIMEOUT = 5.0  # seconds one statement may wait for a lock before a retry
DEFAULT_LOCK_WAIT = 300.0  # seconds a migrator waits for another one to finish
DEFAULT_MODELS = "chatdb.schema.models"  # the models chatdb create diffs against
