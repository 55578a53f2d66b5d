"""How fast the command line starts, and ``chatdb migrate`` against ``alembic upgrade head``.

- ``python -X importtime -c 'import chatdb.cli'`` (and ``chatdb.cli.main``):
  the import time the interpreter reports, median of several runs;
- wall time of ``chatdb --help`` and ``chatdb status`` (a migrated database);
- bootstrap: ``chatdb migrate`` of an empty database to head, against
  ``alembic upgrade head`` of the legacy Alembic history, alternating on
  fresh databases. The legacy history is replayed by an Alembic environment
  written into a temporary directory, one revision per step of
  ``tests/sql/legacy_chain.sql`` (the chain as the legacy service applied
  it); Alembic, SQLAlchemy and psycopg2 live in a venv of their own, created
  on first use under ``~/.cache/chatdb-bench``.

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

REPO = Path(__file__).resolve().parent.parent
CHAIN = REPO / "tests" / "sql" / "legacy_chain.sql"
CHATDB = Path(sys.executable).with_name("chatdb")
ALEMBIC_VENV = Path.home() / ".cache" / "chatdb-bench" / "alembic-venv"
ALEMBIC_PACKAGES = ("alembic>=1.13,<2", "sqlalchemy>=2,<3", "psycopg2-binary>=2.9,<3")
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


def seconds(command: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env, cwd=REPO)
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
    imports = {module: import_ms(module, 15) for module in ("chatdb.cli", "chatdb.cli.main")}
    print(f"imports: {imports}", flush=True)
    help_times = [seconds([str(CHATDB), "--help"]) for _ in range(args.rounds)]
    chatdb_times, alembic_times, status_times = [], [], []
    with server(args.server) as admin, tempfile.TemporaryDirectory() as scratch:
        ini = write_alembic_env(Path(scratch) / "legacy")
        for _ in range(args.rounds):
            with scratch_database(admin) as url:
                chatdb_times.append(seconds([str(CHATDB), "migrate", "--database", url]))
                status_times.append(seconds([str(CHATDB), "status", "--database", url]))
            with scratch_database(admin) as url:
                alembic = [str(python), "-m", "alembic", "-c", str(ini), "upgrade", "head"]
                alembic_times.append(seconds(alembic, env={**os.environ, "LEGACY_URL": url}))
            print(f"migrate {chatdb_times[-1]:.3f}s, alembic {alembic_times[-1]:.3f}s", flush=True)
    median = statistics.median
    ratio = median(chatdb_times) / median(alembic_times)
    markdown = "\n".join(
        [
            "## Start-up and bootstrap",
            "",
            f"`python -m bench.bench_startup` on {report.machine()}; medians.",
            "",
            "| what | time |",
            "| --- | ---: |",
            f"| `python -X importtime -c 'import chatdb.cli'` (15 runs) |"
            f" {imports['chatdb.cli']:.1f} ms |",
            f"| `python -X importtime -c 'import chatdb.cli.main'` (15 runs) |"
            f" {imports['chatdb.cli.main']:.1f} ms |",
            f"| `chatdb --help`, wall ({args.rounds} runs) | {ms(help_times)} |",
            f"| `chatdb status` of a database at head, wall | {ms(status_times)} |",
            f"| `chatdb migrate`, empty database to head, wall | {ms(chatdb_times)} |",
            f"| `alembic upgrade head` of the legacy history (14 revisions), wall |"
            f" {ms(alembic_times)} |",
            "",
            f"Goals: `import chatdb.cli` under 100 ms; `chatdb migrate` ≤ 0.35x `alembic upgrade"
            f" head`, side by side: **{ratio:.2f}x**. `import chatdb` resolves its names on first"
            " use and the command line imports the migration engine and the data API inside the"
            " commands that use them.",
        ]
    )
    report.update_section("startup", markdown)
    print(markdown)


if __name__ == "__main__":
    main()
