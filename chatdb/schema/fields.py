"""Custom Peewee fields for the chat schema."""

from __future__ import annotations

import enum
from typing import Any

import peewee as pw

from chatdb.schema.enums import member


class EnumField(pw.Field):
    """A column of a native PostgreSQL enum type, read and written as members.

    Writing accepts a member of ``enum_class`` or its label (the member name);
    anything else raises ``ValueError`` before SQL is sent. The type name
    defaults to the lower-cased class name, SQLAlchemy's convention, which is
    how the legacy types were named (``Entity`` -> ``entity``).
    """

    def __init__(self, enum_class: type[enum.Enum], type_name: str | None = None, **kwargs: Any):
        self.enum_class = enum_class
        # Peewee reads field_type per instance; its stubs declare it on the class only.
        self.field_type = type_name or enum_class.__name__.lower()  # type: ignore[misc]
        super().__init__(**kwargs)

    @property
    def labels(self) -> list[str]:
        """The database labels, in declaration order."""
        return [member.name for member in self.enum_class]

    def db_value(self, value: Any) -> str | None:
        if value is None:
            return None
        owner = self.model.__name__ if hasattr(self, "model") else "enum"
        return member(self.enum_class, value, f"{owner}.{self.name}").name

    def python_value(self, value: Any) -> enum.Enum | None:
        if value is None or isinstance(value, self.enum_class):
            return value
        return self.enum_class[value]


class VarCharField(pw.CharField):
    """``character varying`` with no length limit, as every legacy text column is."""

    def __init__(self, max_length: int | None = None, **kwargs: Any):
        super().__init__(max_length=max_length, **kwargs)
