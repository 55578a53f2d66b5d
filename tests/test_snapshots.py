"""The stored schema snapshots are exactly what the migrations produce."""

from __future__ import annotations

from chatdb import catalog
from chatdb.catalog import snapshots
from chatdb.migrate import history, loader
from chatdb.migrate.executor import Runner
from tests.conftest import MIGRATIONS


def test_every_migration_has_a_snapshot_matching_a_real_walk(db_url):
    names = loader.names(MIGRATIONS)
    with Runner(db_url, MIGRATIONS) as runner:
        for name in names:
            runner.migrate(name)
            live = catalog.read_catalog(runner.database).without(history.TABLE)
            assert catalog.diff(snapshots.expected(MIGRATIONS, name), live) == [], name


def test_stale_snapshot_is_noticed(db_url, tmp_path):
    """The check above can fail: an edited snapshot no longer matches."""
    import shutil

    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, directory)
    path = snapshots.path_for(directory, "001_baseline")
    path.write_text(path.read_text().replace('"AI_TOOL",', ""))
    with Runner(db_url, directory) as runner:
        runner.migrate("001_baseline")
        live = catalog.read_catalog(runner.database).without(history.TABLE)
    differences = catalog.diff(snapshots.expected(directory, "001_baseline"), live)
    assert [str(d) for d in differences] == ["enum entity: unexpected label AI_TOOL"]
