"""The kiosk app's numbering as its own process, so a test can SIGKILL it mid-issue.

    python -m tests.numbering.kiosk_proc --db FILE --socket AGENT_SOCK --kiosk ID --slot N --count N
        [--die-after-answer K]

Prints ``day number`` for every ticket it 'printed' (confirmed), flushed at once. With
``--die-after-answer K`` it SIGKILLs itself on the K-th allocation, after the allocator's answer arrived
and before the kiosk stored it: the worst moment for a restart.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kiosk.config import NumberingSection
from kiosk.numbering import CenterTicketSource, agent_ask
from tests.numbering.conftest import SERVICES


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--kiosk", required=True)
    parser.add_argument("--slot", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--die-after-answer", type=int, default=0)
    args = parser.parse_args()
    real_ask = agent_ask(args.socket)
    calls = 0

    def ask(cmd: str, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        nonlocal calls
        answer = real_ask(cmd, request, timeout_s)
        if cmd == "ticket.allocate":
            calls += 1
            if calls == args.die_after_answer:
                os.kill(os.getpid(), signal.SIGKILL)
        return answer

    numbering = NumberingSection(mode="center", slot=args.slot, sync_interval_s=0.1)
    source = CenterTicketSource(args.db, kiosk_id=args.kiosk, numbering=numbering, ask=ask)
    source.start()
    for i in range(args.count):
        allocated = source.allocate(SERVICES[i % 2], False, datetime.now(UTC))
        source.confirm(allocated)
        print(allocated.day, allocated.number, flush=True)
    source.sync_once()
    source.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
