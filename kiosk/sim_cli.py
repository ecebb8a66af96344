"""``main.py sim``: the simulator control panel of a kiosk running with ``--simulate``.

Each sub-command sends one ``sim.*`` request over the kiosk's control socket and prints the answer,
so a technician or a demo can pull the paper, show a QR code, lay an ID card on the reader, or unplug
a device while watching the screen. ``sim card`` instead runs a standalone virtual ID card.
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path
from typing import Any

HELP = "drive the simulated devices of a running kiosk (--simulate), or run a virtual ID card"

#: sub-commands implemented in other modules (module with configure(parser))
EXTERNAL: dict[str, str] = {"card": "drivers.card.sim_cli"}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--socket", type=Path, help="the kiosk's control socket (default: from --config)")
    parser.add_argument("--config", type=Path, help="kiosk configuration (default: config/simulate.toml)")
    sub = parser.add_subparsers(dest="sim_command", required=True, metavar="DEVICE")

    p = sub.add_parser("printer", help="paper, cover and power of the virtual printer")
    p.add_argument("--role", choices=["ticket", "receipt"], default="ticket", help="which printer")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--paper", choices=["ok", "near_end", "out"])
    group.add_argument("--cover", choices=["open", "closed"])
    group.add_argument("--power", choices=["on", "off"])
    group.add_argument("--status", action="store_true", help="only show the state and the last ticket PNG")
    p.set_defaults(func=_printer)

    p = sub.add_parser("scanner", help="show a QR image to the camera, type a code, or unplug the scanner")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--show", type=Path, metavar="IMAGE", help="an image file held in front of the camera")
    group.add_argument("--text", help="a code read by the scanner")
    group.add_argument("--clear", action="store_true", help="take the image away from the camera")
    group.add_argument("--unplug", action="store_true")
    group.add_argument("--plug", action="store_true")
    p.set_defaults(func=_scanner)

    p = sub.add_parser("reader", help="plug or unplug the ID-card reader")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--unplug", action="store_true")
    group.add_argument("--plug", action="store_true")
    p.set_defaults(func=_reader)

    p = sub.add_parser("citizen", help="a citizen shows the ID card's QR and lays the card on the reader")
    p.add_argument("--profile", default="adult", help="demo profile name or a profile TOML file")
    p.add_argument("--no-qr", action="store_true", help="do not show the card's QR to the camera")
    p.add_argument("--no-card", action="store_true", help="do not lay the card on the reader")
    p.add_argument("--remove", action="store_true", help="take the card off the reader")
    p.set_defaults(func=_citizen)

    p = sub.add_parser("status", help="state of every simulated device")
    p.set_defaults(func=lambda args: _send(args, "sim.status", {}))

    for name, module_name in EXTERNAL.items():
        module = importlib.import_module(module_name)
        module.configure(sub.add_parser(name, help=module.HELP, description=module.HELP))


def _socket(args: argparse.Namespace) -> Path:
    if args.socket:
        return Path(args.socket)
    from kiosk import SIMULATE_CONFIG
    from kiosk.config import load_config

    return load_config(args.config or SIMULATE_CONFIG).kiosk.data_dir / "app.sock"


def _send(args: argparse.Namespace, cmd: str, payload: dict[str, Any]) -> int:
    from common.ipc import call

    result = call(_socket(args), cmd, payload)
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


def _printer(args: argparse.Namespace) -> int:
    payload: dict[str, Any] = {"role": args.role}
    if args.paper:
        payload["paper"] = args.paper
    elif args.cover:
        payload["cover_open"] = args.cover == "open"
    elif args.power:
        payload["online"] = args.power == "on"
    return _send(args, "sim.printer", payload)


def _scanner(args: argparse.Namespace) -> int:
    if args.show:
        return _send(args, "sim.scanner", {"show": str(args.show.resolve())})
    if args.text is not None:
        return _send(args, "sim.scanner", {"text": args.text})
    if args.clear:
        return _send(args, "sim.scanner", {"clear": True})
    return _send(args, "sim.scanner", {"present": bool(args.plug)})


def _reader(args: argparse.Namespace) -> int:
    return _send(args, "sim.reader", {"present": bool(args.plug)})


def _citizen(args: argparse.Namespace) -> int:
    if args.remove:
        return _send(args, "sim.citizen", {"remove": True})
    return _send(
        args, "sim.citizen", {"profile": args.profile, "show_qr": not args.no_qr, "insert": not args.no_card}
    )
