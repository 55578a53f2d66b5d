"""Defaults the command line shows in ``--help`` without loading the models."""

from __future__ import annotations

DEFAULT_BATCH_SIZE = 1000  # rows per transaction of reindex_search
