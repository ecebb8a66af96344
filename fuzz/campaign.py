"""Run many fuzz targets, each in its own process, a few at a time; collect libFuzzer's final stats.

Used by ``tests/fuzz`` (a few seconds per target inside ``scripts/test``) and ``scripts/fuzz`` (the
long run, a table and JSON).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_EXECUTED = re.compile(r"stat::number_of_executed_units:\s*(\d+)")


@dataclass(frozen=True)
class TargetRun:
    target: str
    runs: int
    seconds: float
    ok: bool
    #: the end of the output when not ok (the finding), else ""
    finding: str = ""


def run_target(target: str, seconds: float, corpus_out: Path) -> TargetRun:
    started = time.monotonic()
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "fuzz.run", target, "--seconds", str(seconds), "--corpus-out",
         str(corpus_out / target)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=seconds * 3 + 60,
    )
    output = proc.stdout + proc.stderr
    match = _EXECUTED.search(output)
    ok = proc.returncode == 0 and "Uncaught Python exception" not in output and "==ERROR" not in output
    return TargetRun(
        target, int(match.group(1)) if match else 0, round(time.monotonic() - started, 1), ok,
        "" if ok else output[-4000:],
    )


def campaign(targets: Iterable[str], seconds: float, corpus_out: Path, workers: int = 2) -> list[TargetRun]:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda t: run_target(t, seconds, corpus_out), targets))


def main(argv: list[str] | None = None) -> int:
    import argparse

    from fuzz.registry import targets

    parser = argparse.ArgumentParser(prog="python -m fuzz.campaign")
    parser.add_argument("--seconds", type=float, default=60.0, help="per target")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="target names (default: all)")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "fuzz.json")
    args = parser.parse_args(argv)
    names = args.only or sorted(targets())
    results = campaign(names, args.seconds, ROOT / "var" / "fuzz", args.workers)
    print(f"{'target':<40} {'inputs':>12} {'seconds':>8}  result")
    for r in results:
        print(f"{r.target:<40} {r.runs:>12,} {r.seconds:>8.1f}  {'ok' if r.ok else 'FINDING'}")
    total = sum(r.runs for r in results)
    print(f"{'total':<40} {total:>12,}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"seconds_per_target": args.seconds, "total_inputs": total,
                                     "targets": [asdict(r) for r in results]}, indent=1))
    for r in results:
        if not r.ok:
            print(f"\n--- {r.target} ---\n{r.finding}", file=sys.stderr)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
