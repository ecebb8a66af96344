"""``python main.py demo --center``: the kiosk beside a local center (broker, allocator, edge agent).

The kiosk alone on simulated devices is ``scripts/demo``; ``--center`` runs
``provisioning/demo_center.py`` (docs/simulators.md, "Demo with a local center").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = (
    "demos: --center runs a local center (broker, allocator, fleet monitor, agent) beside the simulated "
    "kiosk; --kiosks N adds simulated kiosks"
)


def configure(parser: argparse.ArgumentParser) -> None:
    from provisioning.demo_center import BASE_CONFIG, DEFAULT_DIR

    parser.add_argument(
        "--center", action="store_true", help="run a local center beside the kiosk (else: use scripts/demo)"
    )
    parser.add_argument(
        "--dir", type=Path, default=DEFAULT_DIR,
        help=f"where the demo keeps its files (default: {DEFAULT_DIR})",
    )
    parser.add_argument(
        "--kiosk-config", type=Path, default=BASE_CONFIG,
        help="the kiosk configuration the demo starts from (without [agent] and [numbering])",
    )
    parser.add_argument(
        "--kiosks", type=int, default=0, metavar="N",
        help="also N simulated kiosks (real agents, simulated apps) on the fleet page, with faults to inject",
    )
    parser.add_argument(
        "--start-timeout", type=float, default=60.0, metavar="S", help="how long each part may take to start"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.center:
        print(
            "demo: the kiosk alone on simulated devices is scripts/demo; "
            "with a local center beside it: scripts/demo --center (or python main.py demo --center)",
            file=sys.stderr,
        )
        return 2
    from provisioning.demo_center import run_demo

    return run_demo(args.dir, args.kiosk_config, args.start_timeout, args.kiosks)
