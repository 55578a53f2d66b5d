"""The legacy Alembic database: its facts, and the handover to and from chatdb."""
