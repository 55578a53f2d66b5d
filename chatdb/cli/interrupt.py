"""Ctrl-C, wherever it lands: one line and exit 130, as Unix tools do."""

from __future__ import annotations

import sys
from typing import NoReturn


def interrupted(*, end_line: bool) -> NoReturn:
    """Say so in one line and exit 130, after ending the terminal's ``^C`` line if needed."""
    sys.stderr.write(("\n" if end_line else "") + "interrupted\n")
    sys.exit(130)
