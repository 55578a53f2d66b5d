"""Data access for scripts and services: chats, search, token accounting, reindexing."""
