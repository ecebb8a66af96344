"""Every fuzz target of the project, by name: ``<area>.<target>``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

Target = Callable[[bytes], None]

#: area modules under fuzz/ that define ``TARGETS``
AREAS: tuple[str, ...] = ("card", "text", "contract", "allocator")

CORPUS = Path(__file__).resolve().parent / "corpus"


def targets() -> dict[str, Target]:
    found: dict[str, Target] = {}
    for area in AREAS:
        module = importlib.import_module(f"fuzz.{area}")
        for name, target in module.TARGETS.items():
            found[f"{area}.{name}"] = target
    return found


def corpus_dir(name: str) -> Path:
    """Seed inputs of one target (committed): ``fuzz/corpus/<area>.<target>/``."""
    return CORPUS / name
