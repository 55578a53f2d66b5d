"""How fast the command line starts, and ``chatdb migrate`` against ``alembic upgrade head``.

- ``python -X importtime -c 'import chatdb.cli'`` (and ``chatdb.cli.main``):
  the import time the interpreter reports, median of several runs;
- wall time of ``chatdb --help`` and ``chatdb status`` (a migrated database);
- bootstrap: ``chatdb migrate`` of an empty database to head, against
  ``alembic upgrade head`` of the legacy Alembic history, alternating on
  fresh databases. The legacy history is replayed by an Alembic environment
  written into a temporary directory, one revision per step of
  ``bench/legacy_chain.sql`` (the chain's DDL, checked first to give the
  catalog of the real legacy head, ``tests/legacy_dumps/``); Alembic,
  SQLAlchemy and psycopg2 live in a venv of their own, created on first use
  under ``~/.cache/chatdb-bench``. ``chatdb`` runs as a deployment installs
  it (this checkout's wheel, built afresh, in a venv of its own there) and,
  for comparison, from the editable checkout.
  Every command runs once before it is timed and bytecode caches are
  allowed (``PYTHONDONTWRITEBYTECODE`` is dropped), as on a deployed machine.

    python -m bench.bench_startup [--server URL] [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import report
from bench.server import add_server_option, scratch_database, server
from chatdb.catalog import diff, read_catalog
from chatdb.db.connect import execute_autocommit, make_database

REPO = Path(__file__).resolve().parent.parent
CHAIN = REPO / "bench" / "legacy_chain.sql"
LEGACY_HEAD_DUMP = REPO / "tests" / "legacy_dumps" / "14_6d8986f38d7b.sql"
CHATDB = Path(sys.executable).with_name("chatdb")
ALEMBIC_VENV = Path.home() / ".cache" / "chatdb-bench" / "alembic-venv"
ALEMBIC_PACKAGES = ("alembic>=1.13,<2", "sqlalchemy>=2,<3", "psycopg2-binary>=2.9,<3")
# What a migrate imports besides chatdb (click, peewee with psycopg2, peewee-migrate),
# less what the command line defers.
LIBRARIES = "import click, peewee, psycopg2.extras, peewee_migrate"
DEFER = "from chatdb.cli.deferred import defer_unused_imports; defer_unused_imports(); "
DEPLOY_VENV = Path.home() / ".cache" / "chatdb-bench" / "deploy-venv"
ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
_STEP = re.compile(r"^-- ([0-9a-f]{12}): (.*)$", re.M)
# Alembic keeps its own version table; the chain's statements about it go.
_VERSION_TABLE = re.compile(
    r"CREATE TABLE alembic_version \(.*?\);|(INSERT INTO|UPDATE) alembic_version[^;]*;", re.S
)
ENV_PY = """
import os

from alembic import context
from sqlalchemy import create_engine

url = os.environ["LEGACY_URL"].replace("postgresql://", "postgresql+psycopg2://", 1)
engine = create_engine(url)
with engine.connect() as connection:
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
"""
REVISION = '''"""{title}"""
from alembic import op

revision = {revision!r}
down_revision = {down!r}


def upgrade():
    op.get_bind().exec_driver_sql({sql!r})
'''


def alembic_python() -> Path:
    """The bench venv's interpreter, with Alembic installed (created on first use)."""
    python = ALEMBIC_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(ALEMBIC_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *ALEMBIC_PACKAGES], check=True)
    return python


def deployed_chatdb() -> Path:
    """``chatdb`` from this checkout's wheel, installed into the bench's deploy venv."""
    python = DEPLOY_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(DEPLOY_VENV)], check=True)
    with tempfile.TemporaryDirectory() as built:
        pip = [str(python), "-m", "pip", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "wheel", "--no-deps", "-w", built, str(REPO)], check=True)
        (wheel,) = Path(built).glob("chatdb-*.whl")
        subprocess.run([*pip, "install", str(wheel)], check=True)  # dependencies, first time
        subprocess.run([*pip, "install", "--no-deps", "--force-reinstall", str(wheel)], check=True)
    return DEPLOY_VENV / "bin" / "chatdb"


def write_alembic_env(directory: Path) -> Path:
    """An Alembic environment replaying the legacy chain; the path of its alembic.ini."""
    text = CHAIN.read_text()
    steps = list(_STEP.finditer(text))
    (directory / "versions").mkdir(parents=True)
    (directory / "env.py").write_text(ENV_PY)
    down = None
    for index, step in enumerate(steps):
        end = steps[index + 1].start() if index + 1 < len(steps) else len(text)
        sql = _VERSION_TABLE.sub("", text[step.end() : end]).strip()
        revision = step.group(1)
        (directory / "versions" / f"{index:02d}_{revision}.py").write_text(
            REVISION.format(title=step.group(2), revision=revision, down=down, sql=sql)
        )
        down = revision
    ini = directory / "alembic.ini"
    ini.write_text(f"[alembic]\nscript_location = {directory}\n")
    return ini


def check_chain(admin: str, python: Path, ini: Path) -> None:
    """Refuse to time a chain whose result is not the real legacy head's catalog."""
    with scratch_database(admin) as replayed, scratch_database(admin) as real:
        command = [str(python), "-m", "alembic", "-c", str(ini), "upgrade", "head"]
        subprocess.run(
            command, check=True, capture_output=True, env={**ENV, "LEGACY_URL": replayed}
        )
        execute_autocommit(real, LEGACY_HEAD_DUMP.read_text())
        catalogs = []
        for url in (replayed, real):
            database = make_database(url)
            with database.connection_context():
                catalogs.append(read_catalog(database))
        differences = diff(catalogs[1], catalogs[0])
        if differences:
            raise SystemExit(f"{CHAIN} is not the legacy head: {'; '.join(differences)}")


def seconds(command: list[str], env: dict[str, str] | None = None, cwd: Path = REPO) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env or ENV, cwd=cwd)
    return time.perf_counter() - started


def import_ms(module: str, runs: int) -> float:
    """Median of the cumulative import time ``-X importtime`` reports for ``module``, in ms."""
    times = []
    for _ in range(runs):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            capture_output=True,
            text=True,
            check=True,
        )
        line = [row for row in result.stderr.splitlines() if row.rstrip().endswith(f" {module}")]
        times.append(int(line[-1].split("|")[1]) / 1000)
    return statistics.median(times)


def ms(times: list[float]) -> str:
    return f"{statistics.median(times) * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_server_option(parser)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    python = alembic_python()
    deployed = deployed_chatdb()
    imports = {module: import_ms(module, 15) for module in ("chatdb.cli", "chatdb.cli.main")}
    print(f"imports: {imports}", flush=True)
    help_times = [seconds([str(deployed), "--help"]) for _ in range(args.rounds + 1)][1:]
    # The floor under every command: the interpreter, and the libraries chatdb stands on.
    interpreter = deployed.with_name("python")
    floors = {
        what: statistics.median(
            [seconds([str(interpreter), "-c", code]) for _ in range(args.rounds + 1)][1:]
        )
        for what, code in (("interpreter", "pass"), ("libraries", DEFER + LIBRARIES))
    }
    times: dict[str, list[float]] = {"deployed": [], "editable": [], "alembic": [], "status": []}
    with server(args.server) as admin, tempfile.TemporaryDirectory() as scratch:
        ini = write_alembic_env(Path(scratch) / "legacy")
        check_chain(admin, python, ini)
        elsewhere = Path(scratch)

        def bootstrap(kind: str) -> float:
            with scratch_database(admin) as url:
                if kind == "alembic":
                    command = [str(python), "-m", "alembic", "-c", str(ini), "upgrade", "head"]
                    return seconds(command, env={**ENV, "LEGACY_URL": url})
                chatdb = deployed if kind == "deployed" else CHATDB
                took = seconds([str(chatdb), "migrate", "--database", url], cwd=elsewhere)
                if kind == "deployed":
                    times["status"].append(
                        seconds([str(deployed), "status", "--database", url], cwd=elsewhere)
                    )
                return took

        for kind in ("deployed", "editable", "alembic"):  # bytecode caches, first connections
            bootstrap(kind)
        times["status"].clear()
        for _ in range(args.rounds):
            for kind in ("deployed", "editable", "alembic"):
                times[kind].append(bootstrap(kind))
            print({kind: round(values[-1], 3) for kind, values in times.items()}, flush=True)
    median = statistics.median
    ratio = median(times["deployed"]) / median(times["alembic"])
    editable_ratio = median(times["editable"]) / median(times["alembic"])
    markdown = "\n".join(
        [
            "## Start-up and bootstrap",
            "",
            f"`python -m bench.bench_startup` on {report.machine()} (load average"
            f" {os.getloadavg()[0]:.1f}); medians of {args.rounds} runs after one untimed run"
            ' each, bytecode caches allowed. "Installed": this checkout\'s wheel in a venv of'
            ' its own, as a deployment runs it; "editable": `pip install -e .`.',
            "",
            "| what | time |",
            "| --- | ---: |",
            f"| `python -X importtime -c 'import chatdb.cli'` (15 runs) |"
            f" {imports['chatdb.cli']:.1f} ms |",
            f"| `python -X importtime -c 'import chatdb.cli.main'` (15 runs) |"
            f" {imports['chatdb.cli.main']:.1f} ms |",
            f"| `chatdb --help`, installed, wall | {ms(help_times)} |",
            f"| `chatdb status` of a database at head, installed, wall | {ms(times['status'])} |",
            f"| `chatdb migrate`, empty database to head, installed, wall |"
            f" {ms(times['deployed'])} |",
            f"| `chatdb migrate`, empty database to head, editable, wall |"
            f" {ms(times['editable'])} |",
            f"| `alembic upgrade head` of the legacy history (14 revisions), wall |"
            f" {ms(times['alembic'])} |",
            f"| the installed venv's `python -c pass` | {floors['interpreter'] * 1000:.0f} ms |",
            f"| its `python -c '{LIBRARIES}'` (`unittest.mock` deferred as chatdb does) |"
            f" {floors['libraries'] * 1000:.0f} ms |",
            "",
            f"Goals: `import chatdb.cli` under 100 ms; `chatdb migrate` ≤ 0.35x `alembic upgrade"
            f" head`, side by side: **{ratio:.2f}x** installed ({editable_ratio:.2f}x editable,"
            " whose import hook costs every command a few milliseconds). On a database without"
            " tables the whole plan runs in one transaction (`chatdb/migrate/executor.py`,"
            " `_run_together`), and the command line never loads `unittest.mock` (imported by"
            " peewee-migrate for its `create --auto`; `chatdb/cli/deferred.py`). The"
            " interpreter and the libraries chatdb stands on take"
            f" {floors['libraries'] / median(times['alembic']):.2f}x of `alembic upgrade head`"
            " before chatdb's own code or the database do anything; the rest is the same DDL"
            " Alembic sends, the migrator lock on a connection of its own, and the history."
            " `import chatdb` resolves its names on first use and the command line imports the"
            " migration engine and the data API inside the commands that use them.",
        ]
    )
    report.update_section("startup", markdown)
    print(markdown)


if __name__ == "__main__":
    main()
