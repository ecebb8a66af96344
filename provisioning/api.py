"""The enrollment endpoint over HTTPS (the kiosk has no certificate yet, so MQTT's mTLS listener is
closed to it). The server's certificate chains to the center's root CA, whose SHA-256 fingerprint the
kiosk has from the QR code: it checks the CA it is given against that fingerprint, then talks to this
endpoint only over TLS verified against that CA (no trust on first use).

| route | body | answer |
|---|---|---|
| ``GET /enroll/v1/ca`` | – | the CA chain (PEM): issuing, root |
| ``POST /enroll/v1/challenge`` | – | ``enroll-challenge/1`` |
| ``POST /enroll/v1/request`` | ``enroll-request/1`` | ``enroll-answer/1`` (issued, pending, refused) |
| ``POST /enroll/v1/poll`` | ``enroll-poll/1`` | ``enroll-answer/1`` |

Bodies are bounded (16 KiB) before they are read; every answer is the contract's JSON. Each client
address may send ``RATE_BURST`` requests at once, then ``RATE_PER_S``: more is answered 429 with
Retry-After before anything is stored (a flood of challenges would fill the nonce table). A technician
enrolls a PC with 3–4 requests and polls a pending one every few seconds: far under it.
"""

from __future__ import annotations

import logging
import time

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from common.ratelimit import RateLimiter
from contract.enrollment import EnrollAnswer
from provisioning.service import Authority

log = logging.getLogger(__name__)
MAX_BODY = 16 * 1024
JSON = "application/json"
RATE_BURST = 30
RATE_PER_S = 1.0


async def _body(request: Request) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        return None
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BODY:
            return None
    return data


def _answer(answer: EnrollAnswer) -> Response:
    status = {"issued": 200, "pending": 202, "refused": 409 if answer.reason == "replayed" else 403}[
        answer.status
    ]
    return Response(answer.to_payload(), status_code=status, media_type=JSON)


def create_api(authority: Authority, limiter: RateLimiter | None = None) -> Starlette:
    limiter = limiter or RateLimiter(RATE_BURST, RATE_PER_S)

    def refused(request: Request) -> Response | None:
        """429 for an address over its rate; the handlers run on the event loop: one owner thread."""
        address = request.client.host if request.client else "unknown"
        if limiter.allow(address, time.monotonic()):
            return None
        log.warning("enrollment endpoint: %s over its rate, refused", address)
        retry = str(max(1, round(1 / limiter.rate_per_s)))
        return PlainTextResponse("too many requests\n", status_code=429, headers={"Retry-After": retry})

    async def ca(request: Request) -> Response:
        return PlainTextResponse(authority.chain, media_type="application/x-pem-file")

    async def challenge(request: Request) -> Response:
        if (too_many := refused(request)) is not None:
            return too_many
        issued = await run_in_threadpool(authority.challenge)
        return Response(issued.to_payload(), media_type=JSON)

    async def enroll(request: Request) -> Response:
        if (too_many := refused(request)) is not None:
            return too_many
        body = await _body(request)
        if body is None:
            return PlainTextResponse("request too large\n", status_code=413)
        address = request.client.host if request.client else "unknown"
        return _answer(await run_in_threadpool(authority.enroll, body, address))

    async def poll(request: Request) -> Response:
        if (too_many := refused(request)) is not None:
            return too_many
        body = await _body(request)
        if body is None:
            return PlainTextResponse("request too large\n", status_code=413)
        return _answer(await run_in_threadpool(authority.poll, body))

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    return Starlette(
        routes=[
            Route("/enroll/v1/ca", ca, methods=["GET"]),
            Route("/enroll/v1/challenge", challenge, methods=["POST"]),
            Route("/enroll/v1/request", enroll, methods=["POST"]),
            Route("/enroll/v1/poll", poll, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
