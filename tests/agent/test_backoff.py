"""Reconnect backoff: bounded, growing, and spread so a fleet does not reconnect in lockstep."""

from __future__ import annotations

import random

from common.mqtt import Backoff


def test_delays_grow_stay_bounded_and_reset():
    backoff = Backoff(1.0, 120.0, random.Random(7))
    delays = [backoff.next() for _ in range(40)]
    assert all(1.0 <= d <= 120.0 for d in delays)
    assert max(delays[:3]) < 27.0  # at most 3x per step from 1 s
    assert max(delays) > 60  # it climbs towards the cap (a single draw may fall back: that is the jitter)
    backoff.reset()
    assert backoff.next() <= 3.0


def test_ten_thousand_kiosks_spread_their_reconnects():
    """After a broker restart all kiosks lose the connection at once; first retries must not coincide."""
    kiosks = [Backoff(1.0, 120.0, random.Random(seed)) for seed in range(10_000)]
    first = [k.next() for k in kiosks]
    buckets = [0] * 20  # 100 ms buckets over [1 s, 3 s)
    for delay in first:
        buckets[min(int((delay - 1.0) / 0.1), 19)] += 1
    assert max(buckets) < 10_000 * 0.08  # no 100 ms slot gets more than 8 % (uniform: 5 %)
    assert min(buckets) > 10_000 * 0.02
    # Kiosks still failing keep spreading: the 5th retry is distributed over tens of seconds.
    for _ in range(4):
        fifth = [k.next() for k in kiosks]
    assert max(fifth) - min(fifth) > 30
    assert sum(fifth) / len(fifth) > 3 * sum(first) / len(first)  # and back off: the mean delay grows
