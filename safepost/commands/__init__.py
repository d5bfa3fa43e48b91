"""Subcommands contributed by each area: a module here defines ``register(subparsers)``.

Each registers its own parsers with ``set_defaults(func=...)``; ``safepost.cli`` adds
every module listed in ``MODULES``. Keeping them apart lets each service's commands grow
without touching the others'.
"""

from __future__ import annotations

import argparse
import importlib

MODULES: tuple[str, ...] = ("devices", "consent")


def register_all(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for name in MODULES:
        importlib.import_module(f"safepost.commands.{name}").register(sub)
