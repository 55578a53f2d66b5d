"""Modules the command line's dependencies import but its commands never use, loaded on first use.

peewee-migrate's router imports ``unittest.mock`` at the top (for its
``create --auto``, which chatdb replaces), and ``unittest.mock`` imports
``asyncio``: together a tenth of a bootstrap's start-up. The command line
registers a lazy module for it (the standard library's ``LazyLoader``): the
name resolves as usual, and the code runs only if something touches it.
"""

from __future__ import annotations

import importlib.util
import sys

DEFERRED = ("unittest.mock",)


def defer_unused_imports() -> None:
    for name in DEFERRED:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            continue
        spec.loader = importlib.util.LazyLoader(spec.loader)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        # ``from parent import child`` finds it on the parent without touching (loading) it.
        parent, _, child = name.rpartition(".")
        setattr(sys.modules[parent], child, module)
