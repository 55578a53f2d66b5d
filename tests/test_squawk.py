"""squawk (installed by the test extra) agrees with the SQL of every migration, bar the
exceptions .squawk.toml lists; and it does object to an unsafe one."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import MIGRATIONS, NEXT, REPO

SCRIPT = REPO / "scripts" / "squawk_migrations.py"


def squawk_migrations(server_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(SCRIPT), server_url, *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_squawk_is_installed_by_the_test_extra():
    """Missing, the checks below would pass for the wrong reason: fail instead of skipping."""
    assert (REPO / ".squawk.toml").is_file()
    assert shutil.which("squawk", path=str(Path(sys.executable).parent)), (
        "squawk-cli is missing: pip install -e '.[test]'"
    )


def test_the_shipped_migrations_pass_squawk(chatdb_server_url):
    result = squawk_migrations(chatdb_server_url)
    assert result.returncode == 0, result.stdout + result.stderr


def test_squawk_objects_to_a_unique_constraint_in_a_rollback(chatdb_server_url, tmp_path):
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, directory)
    (directory / f"{NEXT}_unique.py").write_text(
        "def migrate(migrator, database, *, fake=False):\n    pass\n\n\n"
        "def rollback(migrator, database, *, fake=False):\n"
        "    migrator.sql('ALTER TABLE threads ADD CONSTRAINT u UNIQUE (title)')\n"
    )
    result = squawk_migrations(chatdb_server_url, "--directory", str(directory))
    assert result.returncode != 0
    assert f"rollback_{NEXT}_unique.sql" in result.stdout
    assert "disallowed-unique-constraint" in result.stdout, result.stdout
