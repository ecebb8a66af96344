"""Feedback (phản ánh, kiến nghị): a topic from the list, free text, an optional phone number, sent
through the back end. The event records the topic only; the text and the phone number are held as
personal data (never logged) and wiped once sent, or when the visit ends. The hotline is shown too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.errors import MotcuaError
from kiosk.dossier import FeedbackMessage, FeedbackReceipt, RequestRefused
from kiosk.dossier.visit import MAX_FEEDBACK, InvalidVisitInput, clean_text, normalize_phone
from kiosk.flows.base import Effect, Flow, FlowContext
from kiosk.flows.personal import HeldValues, PhoneEntry
from kiosk.flows.visit_event import RecordVisit


@dataclass(frozen=True)
class SendFeedback(Effect):
    message: FeedbackMessage


class FeedbackFlow(PhoneEntry, Flow):
    name = "feedback"
    initial = "topic"
    TRANSITIONS = frozenset(
        {
            ("topic", "text"),
            ("text", "topic"),
            ("text", "phone"),
            ("phone", "text"),
            ("phone", "sending"),
            ("sending", "thanks"),
            ("sending", "refused"),
            ("sending", "unavailable"),
            ("unavailable", "sending"),
        }
    )
    BUSY = frozenset({"sending"})
    RESULT = frozenset({"thanks", "refused", "unavailable"})

    def __init__(self, ctx: FlowContext) -> None:
        super().__init__(ctx)
        self.topic: str | None = None
        self._held = HeldValues(ctx.session)
        self._message: FeedbackMessage | None = None
        self.receipt: FeedbackReceipt | None = None
        ctx.session.hold(self)

    @property
    def topics(self) -> list[str]:
        """Topic codes; their labels are ``feedback.topic_<code>`` in the catalogs."""
        return list(self.ctx.config.visit.feedback_topics)

    @property
    def hotline(self) -> str:
        return self.ctx.config.visit.hotline

    @property
    def text(self) -> str:
        return self._held.get("text")

    def do_topic(self, code: str) -> list[Effect]:
        if self.state == "topic" and code in self.topics:
            self.topic = code
            self.go("text")
        return []

    def do_set_text(self, text: str) -> list[Effect]:
        if self.state == "text":
            self._held.set("text", text[: MAX_FEEDBACK + 100])
            self.error_key = None
        return []

    def do_next(self) -> list[Effect]:
        if self.state != "text":
            return []
        try:
            self._held.set("text", clean_text(self.text, MAX_FEEDBACK, "text", minimum=3))
        except InvalidVisitInput:
            self.error_key = "feedback.text_invalid"
            return []
        self.error_key = None
        self.go("phone")
        return []

    def do_back(self) -> list[Effect]:
        if self.state == "text":
            self.go("topic")
        elif self.state == "phone":
            self.go("text")
        return []

    def do_send(self) -> list[Effect]:
        """Send, with the phone number if one was typed (optional: empty sends none)."""
        if self.state != "phone" or self.topic is None:
            return []
        phone: str | None = None
        if self.phone.strip():
            try:
                phone = normalize_phone(self.phone)
            except InvalidVisitInput:
                self.error_key = "visit.phone_invalid"
                return []
        self._message = FeedbackMessage(self.topic, self.text, phone)
        self.go("sending")
        return [SendFeedback(self._message)]

    def do_retry(self) -> list[Effect]:
        if self.state != "unavailable" or self._message is None:
            return []
        self.error_key = None
        self.go("sending")
        return [SendFeedback(self._message)]

    def wipe(self) -> None:
        self._held.wipe()
        self._message = None

    def on_result(self, effect: Effect, result: Any) -> list[Effect]:
        if isinstance(effect, SendFeedback):
            assert isinstance(result, FeedbackReceipt)
            self.receipt = result
            self.wipe()
            self.go("thanks")
            return [RecordVisit("feedback", "sent", topic=self.topic)]
        return []

    def on_failure(self, effect: Effect, error: MotcuaError) -> list[Effect]:
        if isinstance(effect, RecordVisit):
            return []
        if isinstance(error, RequestRefused):
            self.wipe()
            self.fail("refused", "visit.refused")
            return [RecordVisit("feedback", "refused", topic=self.topic)]
        self.fail("unavailable", "visit.unavailable")
        return [RecordVisit("feedback", "unavailable", topic=self.topic)]
