"""The peewee-migrate ``Migrator`` chatdb's replays and previews hand to migration files.

Stock ``Migrator.drop_index`` reads every entry of a model's
``_meta.indexes`` as a ``(columns, unique)`` pair, but an index declared
with ``Model.add_index`` (as the baseline's models declare theirs) is a
``ModelIndex``: any migration dropping an index after it crashed, in
``chatdb migrate``, ``pw_migrate`` and ``chatdb lint`` alike. This one
leaves declared indexes aside while the stock method works on the pairs.
"""

from __future__ import annotations

from typing import Any

import peewee_migrate


class Migrator(peewee_migrate.Migrator):
    def drop_index(self, model: Any, *columns: str) -> Any:
        meta = self.__get_model__(model)._meta
        declared = [index for index in meta.indexes if not isinstance(index, tuple | list)]
        meta.indexes = [index for index in meta.indexes if isinstance(index, tuple | list)]
        try:
            return super().drop_index(model, *columns)
        finally:
            meta.indexes = [*meta.indexes, *declared]
