"""The enrollment endpoint against a flood from one address: refused with 429 before anything is
stored, while a technician's few requests pass (a center of its own: the flood must not slow the other
enrollment tests, which share 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from common.errors import NetworkError
from common.ratelimit import RateLimiter
from contract.enrollment import EnrollChallenge, EnrollmentCode
from provisioning.api import RATE_BURST
from provisioning.enroll import CenterClient
from tests.provisioning.center import RunningCenter, running_center

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def center() -> Iterator[RunningCenter]:
    with running_center() as running:
        yield running


def test_a_flood_of_challenges_is_refused_before_it_fills_the_nonce_table(center: RunningCenter) -> None:
    client = CenterClient(EnrollmentCode.from_text(center.pending_code()))
    client.pin()
    answered = 0
    with pytest.raises(NetworkError, match="429"):
        for _ in range(RATE_BURST + 20):
            EnrollChallenge.parse(client.post("/enroll/v1/challenge")[1])
            answered += 1
    # the burst, and the few the bucket refilled while they were sent (1 per second)
    assert RATE_BURST <= answered < RATE_BURST + 10


def test_the_token_bucket() -> None:
    limiter = RateLimiter(burst=3, rate_per_s=0.5)
    assert [limiter.allow("a", 0.0) for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b", 0.0)  # one key's flood is not another's
    assert not limiter.allow("a", 1.0) and limiter.allow("a", 2.1)  # 0.5 per second
    assert limiter.allow("a", 100.0) and limiter.allow("a", 100.0) and limiter.allow("a", 100.0)
    assert not limiter.allow("a", 100.0)  # refilled to the burst, not beyond
    with pytest.raises(ValueError):
        RateLimiter(burst=0, rate_per_s=1.0)
