"""Every fuzz target of the project, by name: ``<area>.<target>``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

Target = Callable[[bytes], None]

#: area modules under fuzz/ that define ``TARGETS``
AREAS: tuple[str, ...] = ("card", "text", "contract", "allocator")

CORPUS = Path(__file__).resolve().parent / "corpus"


def targets(areas: tuple[str, ...] = AREAS) -> dict[str, Target]:
    """The targets of ``areas`` (default: every area); importing an area module imports what it fuzzes."""
    found: dict[str, Target] = {}
    for area in areas:
        module = importlib.import_module(f"fuzz.{area}")
        for name, target in module.TARGETS.items():
            found[f"{area}.{name}"] = target
    return found


def corpus_dir(name: str) -> Path:
    """Seed inputs of one target (committed): ``fuzz/corpus/<area>.<target>/``."""
    return CORPUS / name
