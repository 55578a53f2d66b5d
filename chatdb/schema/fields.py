"""Custom Peewee fields for the chat schema."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, overload

import peewee as pw

from chatdb.schema.content import read_json_text, to_json
from chatdb.schema.enums import member

if TYPE_CHECKING:  # peewee's stubs make fields generic in the value they read; peewee does not
    _TextBase = pw.CharField[str]
    _JsonBase = pw.CharField[dict[str, Any] | str]
else:
    _TextBase = _JsonBase = pw.CharField


E = TypeVar("E", bound=enum.Enum)


class EnumField(pw.Field, Generic[E]):
    """A column of a native PostgreSQL enum type, read and written as members.

    Writing accepts a member of ``enum_class`` or its label (the member name);
    anything else raises ``InvalidInput`` before SQL is sent. The type name
    defaults to the lower-cased class name, SQLAlchemy's convention, which is
    how the legacy types were named (``Entity`` -> ``entity``).
    """

    def __init__(self, enum_class: type[E], type_name: str | None = None, **kwargs: Any):
        self.enum_class = enum_class
        # Peewee reads field_type per instance; its stubs declare it on the class only.
        self.field_type = type_name or enum_class.__name__.lower()  # type: ignore[misc]
        super().__init__(**kwargs)

    if TYPE_CHECKING:  # read from a row, the column is a member of enum_class

        @overload
        def __get__(self, instance: None, owner: Any) -> Self: ...
        @overload
        def __get__(self, instance: object, owner: Any) -> E: ...
        def __get__(self, instance: object, owner: Any) -> Self | E: ...

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


class VarCharField(_TextBase):
    """``character varying`` with no length limit, as every legacy text column is."""

    def __init__(self, max_length: int | None = None, **kwargs: Any):
        super().__init__(max_length=max_length, **kwargs)


class JsonTextField(_JsonBase):
    """A ``VarCharField`` column holding JSON documents: a dict is written as JSON, read as a dict.

    The legacy columns are text, and some rows hold text that is not JSON
    (tool output); those are read as they were written.
    """

    def __init__(self, **kwargs: Any):
        super().__init__(max_length=None, **kwargs)

    def db_value(self, value: Any) -> str | None:
        if isinstance(value, Mapping):
            return to_json(value, f"{self.name}")
        return super().db_value(value)

    def python_value(self, value: Any) -> dict[str, Any] | str | None:
        return read_json_text(value)
