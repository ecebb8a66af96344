"""The flows of the rest of the visit (docs/visit.md), by the name the core starts them with."""

from __future__ import annotations

from typing import Any

from kiosk.flows.appointment import AppointmentFlow
from kiosk.flows.base import Flow
from kiosk.flows.delivery import PostDeliveryFlow
from kiosk.flows.feedback import FeedbackFlow
from kiosk.flows.payment import FeePaymentFlow

#: ``core.start(name, **args)``: delivery and payment take ``status=`` (the look-up's result)
VISIT_FLOWS: dict[str, Any] = {
    PostDeliveryFlow.name: PostDeliveryFlow,
    FeePaymentFlow.name: FeePaymentFlow,
    AppointmentFlow.name: AppointmentFlow,
    FeedbackFlow.name: FeedbackFlow,
}
VISIT_FLOW_TYPES: tuple[type[Flow], ...] = (PostDeliveryFlow, FeePaymentFlow, AppointmentFlow, FeedbackFlow)
