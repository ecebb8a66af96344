"""Modules that register event handlers (``fleet.ingest.handlers.register``): every ingest worker
imports them before it subscribes. Add the module of a handler here, e.g. ``"fleet.queue.hooks"``."""

from __future__ import annotations

import importlib

HANDLER_MODULES: tuple[str, ...] = ("fleet.queue.ingest_hooks",)


def load(extra: tuple[str, ...] = ()) -> list[str]:
    """Import the handler modules (and ``extra``, given on the command line); returns their names."""
    names = list(HANDLER_MODULES) + [m for m in extra if m not in HANDLER_MODULES]
    for name in names:
        importlib.import_module(name)
    return names
