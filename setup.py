"""Build script. setup.cfg holds the metadata; this adds what it cannot say.

The migrations live at the top of the repository (``migrations/``, where
``pw_migrate`` users expect them) and ship inside the package as
``chatdb/_migrations`` with their schema snapshots and ``conf.py``, so an
installed chatdb always carries the history that matches its models.
"""

import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py


class BuildPy(build_py):
    """Copy the migrations afresh: a file deleted from migrations/ must not ship from build/."""

    def run(self) -> None:
        shutil.rmtree(Path(self.build_lib) / "chatdb" / "_migrations", ignore_errors=True)
        super().run()


setup(
    packages=[*find_packages(include=["chatdb", "chatdb.*"]), "chatdb._migrations"],
    package_dir={"chatdb._migrations": "migrations"},
    package_data={"chatdb": ["py.typed"], "chatdb._migrations": ["schema/*.json"]},
    cmdclass={"build_py": BuildPy},
)
