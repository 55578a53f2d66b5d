"""Public column types for migration files: ``from chatdb.fields import EnumField``.

Part of the public migration API with :mod:`chatdb.operations`: applied
migration files import these names from this path, so it never moves. The
implementation lives in :mod:`chatdb.schema.fields`.
"""

from chatdb.schema.fields import EnumField, VarCharField

__all__ = ["EnumField", "VarCharField"]
