"""Throwaway migration histories of any length, for tests and benchmarks of the engine.

The first migration creates one table; each later one adds a column to it
through the migrator, and its rollback removes that column the same way, so
every migration needs the model state the ones before it left: a history
that exercises the state replay, not only the file list.
"""

from __future__ import annotations

from pathlib import Path

TABLE = "history_probe"

_FIRST = f'''import peewee as pw


def migrate(migrator, database, *, fake=False):
    @migrator.create_model
    class Probe(pw.Model):
        id = pw.AutoField()

        class Meta:
            table_name = "{TABLE}"


def rollback(migrator, database, *, fake=False):
    migrator.remove_model("{TABLE}")
'''

_LATER = f'''import peewee as pw


def migrate(migrator, database, *, fake=False):
    migrator.add_fields("{TABLE}", {{column}}=pw.IntegerField(null=True))


def rollback(migrator, database, *, fake=False):
    migrator.remove_fields("{TABLE}", "{{column}}")
'''


def names(count: int) -> list[str]:
    """The migration names of a history of ``count`` migrations, in order."""
    return ["001_create_probe"] + [f"{n:03d}_add_c{n:03d}" for n in range(2, count + 1)]


def write(directory: Path, count: int) -> list[str]:
    """Write a history of ``count`` migrations (at most 999) into ``directory``; its names."""
    directory.mkdir(parents=True, exist_ok=True)
    written = names(count)
    for number, name in enumerate(written, 1):
        source = _FIRST if number == 1 else _LATER.format(column=f"c{number:03d}")
        (directory / f"{name}.py").write_text(source)
    return written
