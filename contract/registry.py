"""Every message type of the contract by its ``schema`` name, for consumers that dispatch on it."""

from __future__ import annotations

from contract.commands import Command, CommandResult
from contract.config import ConfigPush, ConfigState
from contract.enrollment import (
    CertRequest,
    CertResponse,
    EnrollAnswer,
    EnrollChallenge,
    EnrollPoll,
    EnrollRequest,
)
from contract.events import Event
from contract.health import Health
from contract.message import Message
from contract.queue import QueueEvent, QueueStats
from contract.status import Status
from contract.tickets import AllocatorStatus, QueueCalled, TicketRequest, TicketResponse

MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.SCHEMA: cls
    for cls in (
        Status, Health, Event, Command, CommandResult, ConfigPush, ConfigState, TicketRequest,
        TicketResponse, QueueCalled, AllocatorStatus, QueueEvent, QueueStats, EnrollChallenge,
        EnrollRequest, EnrollPoll, EnrollAnswer, CertRequest, CertResponse,
    )
}
