"""The canonical, ISA-95 aligned world of plantbridge: pydantic models only."""

from plantbridge.canonical.ack import Acknowledgement, ErpOutcome
from plantbridge.canonical.commands import StepKind, StepRequest, StepResult
from plantbridge.canonical.events import EventType, PlantEvent
from plantbridge.canonical.exceptions import ExceptionResolution, OrderException, SupervisorAction
from plantbridge.canonical.fields import Quantity, normalize_order_number, sap_order_number
from plantbridge.canonical.order import Component, Operation, ProductionOrder, workflow_id
from plantbridge.canonical.policy import PlantPolicy
from plantbridge.canonical.saga import SagaState
from plantbridge.canonical.states import OrderState

__all__ = [
    "Acknowledgement",
    "Component",
    "ErpOutcome",
    "EventType",
    "ExceptionResolution",
    "Operation",
    "OrderException",
    "OrderState",
    "PlantEvent",
    "PlantPolicy",
    "ProductionOrder",
    "Quantity",
    "SagaState",
    "StepKind",
    "StepRequest",
    "StepResult",
    "SupervisorAction",
    "normalize_order_number",
    "sap_order_number",
    "workflow_id",
]
