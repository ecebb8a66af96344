"""``python main.py simfleet run|fault|list --dir DIR``: the demo's simulated kiosks, and their faults.

``run`` is what ``scripts/demo --center --kiosks N`` starts (its kiosks enrolled in the demo center
under ``var/demo-center/sim/``); ``fault`` changes what is wrong with one of them while it runs:

    python main.py simfleet fault --kiosk kiosk-sim-03 --paper out      # then --paper ok
    python main.py simfleet fault --kiosk kiosk-sim-03 --reader unplug  # then --reader plug
    python main.py simfleet fault --kiosk kiosk-sim-03 --offline        # then --online
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

HELP = "the demo fleet's simulated kiosks (real agents, simulated apps): run them, inject faults"
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "var" / "demo-center" / "sim"
PAPER = {"out": "paper_out", "near-end": "paper_near_end", "ok": "ok", "cover-open": "cover_open"}


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    run = sub.add_parser("run", help="run every simulated kiosk of --dir until SIGTERM/SIGINT")
    run.add_argument("--dir", type=Path, default=DEFAULT_DIR,
                     help=f"the fleet's folder (default {DEFAULT_DIR})")
    run.add_argument("--visit-every", type=float, default=45.0, metavar="S",
                     help="seconds between two citizens at a kiosk, on average")
    run.set_defaults(func=_run)
    fault = sub.add_parser("fault", help="change what is wrong with one simulated kiosk")
    fault.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    fault.add_argument("--kiosk", required=True, help="the kiosk id (see: simfleet list)")
    fault.add_argument("--paper", choices=sorted(PAPER), help="the ticket printer's paper")
    fault.add_argument("--reader", choices=["unplug", "plug"], help="the ID-card reader")
    fault.add_argument("--scanner", choices=["unplug", "plug"], help="the QR scanner")
    link = fault.add_mutually_exclusive_group()
    link.add_argument("--offline", action="store_true", help="cut the kiosk off (its agent stops)")
    link.add_argument("--online", action="store_true", help="bring it back")
    fault.set_defaults(func=_fault)
    listing = sub.add_parser("list", help="the simulated kiosks and their faults (JSON)")
    listing.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    listing.set_defaults(func=_list)


def _run(args: argparse.Namespace) -> int:
    import logging

    from simfleet.kiosks import SimulatedFleet

    logging.getLogger().setLevel(logging.INFO)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    SimulatedFleet(args.dir, visit_every_s=args.visit_every).run(stop)
    return 0


def _fault(args: argparse.Namespace) -> int:
    from simfleet.kiosks import set_fault

    changes: list[tuple[str, str]] = []
    if args.paper:
        changes.append(("printer", PAPER[args.paper]))
    if args.reader:
        changes.append(("card_reader", "missing" if args.reader == "unplug" else "ok"))
    if args.scanner:
        changes.append(("scanner", "missing" if args.scanner == "unplug" else "ok"))
    offline = True if args.offline else False if args.online else None
    if not changes and offline is None:
        print("simfleet fault: say what changes (--paper, --reader, --scanner, --offline, --online)",
              file=sys.stderr)
        return 2
    fault = None
    for device, state in changes:
        fault = set_fault(args.dir, args.kiosk, device=device, state=state)
    if offline is not None:
        fault = set_fault(args.dir, args.kiosk, offline=offline)
    assert fault is not None
    print(json.dumps({"kiosk": args.kiosk, **fault.to_data()}, ensure_ascii=False))
    return 0


def _list(args: argparse.Namespace) -> int:
    from edge_agent.cli import load_settings
    from simfleet.kiosks import Fault, kiosk_dirs, read_faults

    faults = read_faults(args.dir)
    rows = []
    for folder in kiosk_dirs(args.dir):
        kiosk = load_settings(folder / "kiosk.toml").kiosk_id
        rows.append({"kiosk": kiosk, **faults.get(kiosk, Fault()).to_data()})
    print(json.dumps(rows, ensure_ascii=False, indent=2))
    return 0
