"""The public surface is typed: a user's script using every public name passes mypy --strict.

Every name of ``chatdb`` and of ``chatdb.aio``.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import chatdb
import chatdb.aio
from tests.conftest import REPO

SAMPLE = REPO / "tests" / "samples" / "typed_user.py"
# As for an installed package, mypy type-checks the user's code against chatdb's types
# without reporting chatdb's own findings (chatdb's own scope is setup.cfg's).
CONFIG = "[mypy]\nstrict = True\ncache_dir = /dev/null\n[mypy-chatdb.*]\nfollow_imports = silent\n"


def _mypy(folder: Path, script: str) -> subprocess.CompletedProcess[str]:
    (folder / "mypy.ini").write_text(CONFIG)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", script],
        cwd=folder,
        env={**os.environ, "MYPYPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_sample_script_uses_every_public_name():
    tree = ast.parse(SAMPLE.read_text())
    used = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "chatdb"
        for alias in node.names
    }
    used |= {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and getattr(node.value, "id", "") == "chatdb"
    }
    assert set(chatdb.__all__) <= used, sorted(set(chatdb.__all__) - used)
    used_async = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and ast.unparse(node.value) == "chatdb.aio"
    }
    used_async |= {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and getattr(node.value, "id", "") == "db"
    }
    assert set(chatdb.aio.__all__) <= used_async, sorted(set(chatdb.aio.__all__) - used_async)


def test_a_user_script_passes_mypy_strict_and_wrong_uses_are_caught(tmp_path: Path):
    shutil.copy(SAMPLE, tmp_path / "user.py")
    checked = _mypy(tmp_path, "user.py")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    (tmp_path / "wrong.py").write_text(
        "import chatdb\n"
        "title: int = chatdb.get_thread('x').title\n"
        "chatdb.connect().list_threads(1)\n"
        "entity: str = chatdb.Message().entity\n"
    )
    wrong = _mypy(tmp_path, "wrong.py")
    assert wrong.returncode == 1
    assert "Found 3 errors" in wrong.stdout, wrong.stdout
