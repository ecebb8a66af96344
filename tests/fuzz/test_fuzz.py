"""Every fuzz target: its committed seeds replayed in-process, then a short atheris run of each.

The long run is ``scripts/fuzz`` (docs/fuzzing.md). Here the whole set stays well under two minutes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzz.campaign import campaign
from fuzz.registry import corpus_dir, targets

ALL = sorted(targets())
#: seconds of atheris per target inside scripts/test
BRIEF_S = 1.5


@pytest.mark.parametrize("name", ALL)
def test_seeds_are_handled(name: str) -> None:
    """Each committed seed goes through the target without an unexpected exception."""
    seeds = sorted(p for p in corpus_dir(name).glob("*") if p.is_file())
    assert seeds, f"fuzz/corpus/{name}/ has no seed inputs"
    target = targets()[name]
    for seed in seeds:
        target(seed.read_bytes())


def test_brief_campaign(tmp_path: Path) -> None:
    results = campaign(ALL, BRIEF_S, tmp_path)
    findings = [r for r in results if not r.ok]
    assert not findings, "\n\n".join(f"{r.target}:\n{r.finding}" for r in findings)
    assert all(r.runs > 0 for r in results), [r.target for r in results if r.runs == 0]
