"""Odoo release intake: the automation rule "Send Webhook Notification" on `mrp.production` (state set
to confirmed) posts `{"_model", "_id", "_action", ...}` to `/v1/erp/odoo/events/{plant}/{token}`.

Odoo sends no custom header, so the webhook URL carries a per-plant token (the plant file's
`erp.webhook_token_env`); it is compared in constant time and never logged (the uvicorn access log
line shows the path with the token redacted). The body is stored raw in the inbox (channel
`odoo:<plant>`) before anything else; the MO is then read back over Odoo's API through the plant's
connector and its saga started exactly as for SAP (`ErpSystem=odoo`); when Odoo cannot answer that read
now (a transient error), the message is kept `deferred` (503) and the gateway's re-driver reads again. The
webhook is at-most-once (1 s timeout, no retry): the per-plant poller (workflows/odoo_poller.py) catches
what it misses.
"""

from __future__ import annotations

import hmac
import logging
import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from temporalio.service import RPCError

from plantbridge.client import TemporalUnavailable
from plantbridge.connectors.errors import TransientError
from plantbridge.gateway.bodies import parse_json
from plantbridge.gateway.errors import ApiError, invalid
from plantbridge.gateway.outcome import Outcome

if TYPE_CHECKING:  # the inbox drives this class and re-drives through it (inbox.py imports this module)
    from plantbridge.gateway.inbox import Intake

log = logging.getLogger("plantbridge.gateway")

ODOO_CHANNEL = "odoo:"  # + plant: the inbox channel of a plant's Odoo webhook messages
WEBHOOK_PATH = "/v1/erp/odoo/events"
_TOKEN_IN_PATH = re.compile(r"(/v1/erp/odoo/events/[^/\s?]+/)[^/\s?\"]+")
_DUMMY = "x" * 32


def redact(text: str) -> str:
    """A path (or log line) with the Odoo webhook token replaced by `***`."""
    return _TOKEN_IN_PATH.sub(r"\1***", text)


class RedactWebhookToken(logging.Filter):
    """A logging filter for uvicorn's access log (and any other): the webhook token never reaches a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str) and WEBHOOK_PATH in record.msg:
            record.msg = redact(record.msg)
        return True


def install_log_redaction() -> None:
    for name in ("uvicorn.access", "uvicorn.error", "plantbridge.gateway"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactWebhookToken) for f in logger.filters):
            logger.addFilter(RedactWebhookToken())


def token_ok(tokens: dict[str, str], plant: str, token: str) -> bool:
    """Constant time in the token; an unknown plant costs the same comparison and fails."""
    expected = tokens.get(plant)
    same = hmac.compare_digest((expected or _DUMMY).encode(), token.encode())
    return expected is not None and same


class OdooWebhook(BaseModel):
    """What Odoo's `_run_action_webhook` posts (plus the fields the rule chose, kept but not needed)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    model: str = Field(alias="_model", min_length=1, max_length=100)
    record_id: int = Field(alias="_id", ge=1)
    action: str | None = Field(default=None, alias="_action", max_length=300)


class OdooIntake:
    def __init__(self, intake: Intake) -> None:
        self.intake = intake
        self.deps = intake.deps

    async def webhook(self, msg_id: int, raw: bytes, plant: str) -> Outcome:
        from plantbridge.gateway.erp_intake import ErpIntake, temporal_failure

        try:
            hook = OdooWebhook.model_validate(parse_json(raw))
        except ApiError as err:
            return await self.intake.dead(msg_id, err)
        except ValidationError as err:
            return await self.intake.dead(msg_id, invalid(err, None, "Odoo webhook"))
        if hook.model != "mrp.production":
            msg = f"_model {hook.model[:80]!r} is not mrp.production: point the rule at manufacturing orders"
            return await self.intake.dead(msg_id, ApiError(422, "validation_error", msg,
                                                           [{"loc": ["_model"], "message": msg}]))
        source = self.deps.order_sources.get(plant)
        if source is None:
            return await self.intake.dead(msg_id, ApiError(
                503, "no_order_source", f"plant {plant} has no Odoo order source configured"))
        number = str(hook.record_id)
        try:
            order = await source.read_order(number)
        except LookupError as err:
            return await self.intake.dead(msg_id, ApiError(404, "erp_order_not_found",
                                                           f"Odoo does not know MO {number}: {err}"[:300]))
        except TransientError as err:  # Odoo not now (5xx, hang, lock): kept and re-driven, as for Temporal
            log.warning("reading Odoo MO %s of plant %s failed, deferred: %s", number, plant, err)
            return await self.intake.defer(msg_id, "erp_unavailable", f"could not read MO {number} from Odoo now "
                                           f"({err})"[:300], retry_after=5, plant=plant, order=number)
        except Exception as err:
            log.warning("reading Odoo MO %s of plant %s failed: %s", number, plant, err)
            return await self.intake.dead(msg_id, ApiError(
                502, "erp_unavailable", f"could not read MO {number} from Odoo: {err}"[:300]))
        if order.plant != plant:
            return await self.intake.dead(msg_id, ApiError(
                422, "wrong_plant", f"MO {number} belongs to plant {order.plant}, not {plant}"))
        erp = ErpIntake(self.intake)
        try:
            result: dict[str, Any] = await erp.order_known(order, "odoo")
        except (TemporalUnavailable, RPCError) as err:
            return await temporal_failure(self.intake, msg_id, err, order)
        out = Outcome(200, result)
        await self.intake.inbox.finish(msg_id, "processed", answer=out.stored(), reason=result.get("reason"),
                                       plant=order.plant, order=order.number)
        return out
