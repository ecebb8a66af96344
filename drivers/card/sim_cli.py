"""``python main.py sim card --profile FILE [--vpcd HOST:PORT] [faults...]``: run the virtual CCCD.

Written to work as a sub-parser of ``sim`` (``kiosk/sim_cli.py`` registers it). The card stays in the
reader until Ctrl-C; ``--reinsert`` puts it back after a fault removed it. ``--print-keys`` prints the
MRZ and QR text a tester needs for ``card read`` (fictional data from the profile).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

HELP = "run the virtual CCCD chip on vsmartcard's vpcd"
DEFAULT_PKI = Path("var/card-pki")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile", required=True, help="TOML profile, or a demo name (adult, elderly, married)"
    )
    parser.add_argument("--vpcd", default="127.0.0.1:35963", help="vpcd HOST:PORT (default %(default)s)")
    parser.add_argument(
        "--pki",
        type=Path,
        default=DEFAULT_PKI,
        help="test PKI folder, created if missing; --trust for card read is PKI/trust",
    )
    parser.add_argument("--start-pcscd", action="store_true", help="start pcscd first if it is not running")
    parser.add_argument("--print-keys", action="store_true", help="print MRZ key and QR text, then serve")
    parser.add_argument(
        "--reinsert",
        type=float,
        metavar="SECONDS",
        help="after the card left the field, put it back after SECONDS",
    )
    faults = parser.add_argument_group("faults")
    faults.add_argument("--bad-mac", action="store_true", help="corrupt every response MAC")
    faults.add_argument("--alter-dg13", action="store_true", help="DG13 changed after signing")
    faults.add_argument("--remove-after", type=int, metavar="N", help="leave the field at APDU N")
    faults.add_argument("--delay", type=float, default=0.0, metavar="SECONDS", help="delay per APDU")
    faults.add_argument("--not-id-card", action="store_true", help="no eMRTD application (6A82)")
    faults.add_argument("--truncate-dg13", action="store_true", help="DG13 shorter than its TLV says")
    faults.add_argument("--bad-tlv-dg13", action="store_true", help="garbage TLV lengths inside DG13")
    faults.add_argument("--no-sfi", action="store_true", help="refuse short file ids (SELECT needed)")
    faults.add_argument("--no-extended", action="store_true", help="answer 6700 to extended length")
    faults.add_argument("--wrong-aa-key", action="store_true", help="a clone: AA signed with another key")
    faults.add_argument("--wrong-ca-key", action="store_true", help="a clone: CA answered with another key")
    faults.add_argument("--refuse-chip-auth", action="store_true", help="answer 6A88 to chip authentication")
    faults.add_argument(
        "--deep-nesting",
        choices=("DG13", "DG2", "DG14", "EF.CardAccess"),
        help="that file nests an element thousands of levels deep (a hostile card)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from drivers.card.pcscd import ensure_pcscd
    from drivers.card.sim.chip import CardFaults
    from drivers.card.sim.pki import TestPki
    from drivers.card.sim.profile import load_profile
    from drivers.card.sim.vicc import VirtualCard

    host, _, port = args.vpcd.rpartition(":")
    faults = CardFaults(
        bad_mac=args.bad_mac,
        alter_dg13=args.alter_dg13,
        remove_after_apdus=args.remove_after,
        delay_s=args.delay,
        not_id_card=args.not_id_card,
        truncate_dg13=args.truncate_dg13,
        bad_tlv_dg13=args.bad_tlv_dg13,
        no_sfi=args.no_sfi,
        no_extended=args.no_extended,
        deep_nesting=args.deep_nesting,
        wrong_aa_key=args.wrong_aa_key,
        wrong_ca_key=args.wrong_ca_key,
        refuse_chip_auth=args.refuse_chip_auth,
    )
    if args.start_pcscd:
        ensure_pcscd()
    profile = load_profile(args.profile)
    pki = TestPki.load_or_create(args.pki)
    card = VirtualCard(profile, pki, faults)
    if args.print_keys:
        print(
            json.dumps(
                {
                    "doc_number": profile.document_number,
                    "birth": profile.birth_date.strftime("%y%m%d"),
                    "expiry": profile.mrz_expiry,
                    "cccd_qr": profile.qr_text,
                    "can": profile.id_number[-6:],
                    "trust": str(pki.trust_dir),
                },
                ensure_ascii=False,
            ),
            flush=True,
        )
    card.insert(host or "127.0.0.1", int(port))
    print(f"virtual card inserted at {args.vpcd}; faults: {', '.join(faults.active()) or 'none'}", flush=True)
    try:
        while True:
            if not card.inserted:
                if args.reinsert is None:
                    print("virtual card left the field", flush=True)
                    return 0
                time.sleep(args.reinsert)
                card.insert(host or "127.0.0.1", int(port))
                print("virtual card inserted again", flush=True)
            time.sleep(0.1)
    except KeyboardInterrupt:
        return 0
    finally:
        card.close()
