"""``python -m fuzz.run TARGET [--seconds N] [--runs N] [--corpus-out DIR]``: fuzz one target with atheris.

The committed seed corpus (``fuzz/corpus/TARGET``) is read but never written: new interesting inputs
go to ``--corpus-out`` (default: a folder under ``var/fuzz``), so a long run does not dirty the tree.
Prints one JSON line at the end: target, runs, seconds, crashed (bool). Exit code 0 = no finding.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz.run")
    parser.add_argument("target", help="<area>.<target>, see python -m fuzz.run --list")
    parser.add_argument("--seconds", type=float, default=10.0, help="stop after this long")
    parser.add_argument("--runs", type=int, default=0, help="stop after this many inputs (0: no limit)")
    parser.add_argument("--corpus-out", type=Path, help="where new inputs go (default var/fuzz/TARGET)")
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    args, rest = parser.parse_known_args(argv)
    sys.setrecursionlimit(10_000)  # a parser that recurses without a bound is found, not masked
    import atheris

    packages = ["contract", "common", "drivers", "kiosk", "edge_agent", "fleet", "provisioning"]
    area = args.target.split(".", 1)[0]
    with atheris.instrument_imports(include=packages):
        from fuzz.registry import AREAS, corpus_dir, targets

        # Only the target's own area is imported (and instrumented): the start of a brief run is most
        # of its time, and the card stack's imports are not the contract's.
        found = targets() if args.list or area not in AREAS else targets((area,))
    if args.list:
        print("\n".join(sorted(found)))
        return 0
    if args.target not in found:
        parser.error(f"unknown target {args.target!r}; try --list")
    target = found[args.target]
    out = args.corpus_out or ROOT / "var" / "fuzz" / args.target
    out.mkdir(parents=True, exist_ok=True)
    seeds = corpus_dir(args.target)
    libfuzzer = [sys.argv[0], str(out)]
    if seeds.is_dir():
        libfuzzer.append(str(seeds))
    crashes = ROOT / "var" / "fuzz" / "findings" / args.target
    crashes.mkdir(parents=True, exist_ok=True)
    libfuzzer += [f"-max_total_time={max(1, int(args.seconds))}", "-timeout=10", "-rss_limit_mb=2048",
                  "-print_final_stats=1", f"-artifact_prefix={crashes}/"]
    if args.runs:
        libfuzzer.append(f"-runs={args.runs}")
    libfuzzer += rest
    started = time.monotonic()

    def one(data: bytes) -> None:
        target(data)

    atheris.Setup(libfuzzer, one)
    try:
        atheris.Fuzz()  # returns only through exit (libFuzzer)
    finally:
        print(json.dumps({"target": args.target, "seconds": round(time.monotonic() - started, 1)}),
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
