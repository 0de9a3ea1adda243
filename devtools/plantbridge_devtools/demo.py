"""`plantbridge demo`: a simulated plant drives real orders through the local stack.

Uses a running `plantbridge dev` (its `dev.json`) or starts its own stack on free ports in a
temporary folder and stops it at the end. A hybrid landscape: plants 1000 and 2000 on SAP, plant 3000
on Odoo. SAP orders are created and released in the SAP simulator (the release reaches the gateway
as an S/4HANA business event); Odoo manufacturing orders are confirmed in the Odoo simulator (its
automation rule posts the webhook to the gateway; the release poller catches a lost one). Either way
the saga starts, dispatches to the MES and stages material in the WMS; the MES simulator's script
runner then executes each order (see `demo_script.py`), and scripted supervisors act through the
gateway's API. The summary counts what SAP and Odoo themselves hold (Odoo through its JSON-2 API).

Phases: (1) every order starts and reports concurrently (downtime, maintenance request, quality
hold released by QA, a duplicate resend, one cancellation per lane); (2) with every posting settled,
SAP's posting period is closed and Odoo refuses the integration user a right: one order per lane
has its final confirmation rejected, the cause is fixed and a supervisor retries; (3) every order
runs to its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import os
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from plantbridge_devtools import demo_script as script
from plantbridge_devtools import resend
from plantbridge_devtools.demo_odoo import OdooCount, count_odoo
from plantbridge_devtools.odoo_seed import OdooApi
from plantbridge_devtools.simulators.machines import MachineSpec
from plantbridge_devtools.simulators.machines.mqtt_publisher import MqttMachinePublisher
from plantbridge_devtools.stack import DEV_SECRETS, Ports, Stack, http_ok, read_dev_file

log = logging.getLogger("plantbridge.demo")
END_STATES = ("posted", "cancelled")
RESEND_FOR_S = 180.0  # how long a call is sent again through an outage before the demo gives up


class DemoError(RuntimeError):
    pass


@dataclass
class DemoOrder:
    index: int
    plant: str
    number: str = ""
    state: str = "creating"
    stage: str = "create in SAP"
    expected: str = "posted"
    exceptions: int = 0
    erp: str = "sap"  # the lane: "sap" (plants 1000, 2000) or "odoo" (plant 3000)
    clock: datetime | None = None  # where the order's MES script clock stands (the last script's end)

    @property
    def label(self) -> str:
        return self.number or f"#{self.index}"


@dataclass
class Counts:
    exceptions_opened: int = 0
    exceptions_resolved: int = 0
    holds: int = 0
    holds_released: int = 0
    cancelled: int = 0
    resent: int = 0
    duplicates_answered: int = 0
    downtimes: int = 0
    maintenance_requests: int = 0
    mes_events: int = 0
    rejections: dict[str, str] = field(default_factory=dict)  # "plant/order" -> the ERP's text in the exception
    order_changes: int = 0
    events: Counter[str] = field(default_factory=Counter)
    calls_resent: int = 0  # requests sent again after "not now" or no answer (an outage)


def odoo_orders(orders: int) -> int:
    """The Odoo lane's size beside `orders` SAP orders: half as many, at least one per scripted role."""
    return max(4, orders // 2)


# How much longer than usual the demo waits for the stack (`plantbridge chaos` sets it while it breaks things).
PATIENCE: contextvars.ContextVar[float] = contextvars.ContextVar("demo_patience", default=1.0)


async def eventually(what: str, check: Callable[[], Awaitable[bool]], timeout_s: float = 60.0,
                     every_s: float = 0.3) -> None:
    timeout_s *= PATIENCE.get()
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(every_s)


class PlantDemo:
    def __init__(self, info: dict[str, Any], orders: int, console: Console) -> None:
        self.info = info
        self.urls: dict[str, str] = info["urls"]
        self.keys: dict[str, str] = info["api_keys"]
        self.console = console
        self.orders = [DemoOrder(i, script.plant_of(i).plant) for i in range(orders)]
        self.orders[script.CANCEL_ORDER].expected = "cancelled"
        odoo = info.get("odoo")
        self.odoo: OdooApi | None = None
        if isinstance(odoo, dict) and self.urls.get("odoo"):  # the hybrid landscape: plant 3000 on Odoo
            self.odoo = OdooApi(self.urls["odoo"], odoo["database"], odoo["api_key"])
            lane = [DemoOrder(i, script.ODOO_PLANT, erp="odoo", stage="confirm in Odoo")
                    for i in range(odoo_orders(orders))]
            lane[script.CANCEL_ORDER].expected = "cancelled"
            self.orders += lane
        self.counts = Counts()
        self.http = httpx.AsyncClient(timeout=30.0)
        self.resend_for_s = RESEND_FOR_S
        self.phase = "setup"
        self.started = time.monotonic()
        self.last: dict[str, Any] = {}
        self.mqtt_machine: MqttMachinePublisher | None = None  # plant 2000's machine on the broker

    @staticmethod
    def setup_of(order: DemoOrder) -> script.PlantSetup:
        return script.PLANTS[order.plant]

    def lane(self, erp: str) -> list[DemoOrder]:
        return [o for o in self.orders if o.erp == erp]

    # --- HTTP helpers --------------------------------------------------------------------------

    def _auth(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[key]}"}

    async def call(self, method: str, url: str, *, ok: tuple[int, ...] = (200, 201, 202), **kw: Any) -> Any:
        """One request, sent again through an outage as a plant system would (resend.py); the gateway's
        writes are sent again after a lost answer too (it deduplicates them), and a lever answered 409
        after such a resend was pulled by the lost attempt."""
        gateway = url.startswith(self.urls["gateway"])
        try:
            sent = await resend.send(self.http, method, url, resend_for_s=self.resend_for_s, resend_writes=gateway,
                                     on_resend=self._resent, **kw)
        except httpx.TransportError as err:
            raise DemoError(f"{method} {url}: no answer ({type(err).__name__}: {err})") from err
        response = sent.response
        if response.status_code not in ok and not (sent.ambiguous and gateway and response.status_code == 409):
            raise DemoError(f"{method} {url} answered {response.status_code}: {response.text[:300]}")
        return response.json() if response.content else None

    def _resent(self, why: str) -> None:
        self.counts.calls_resent += 1
        log.info("%s", why)

    async def sap(self, method: str, path: str, body: Any = None) -> Any:
        return await self.call(method, f"{self.urls['sap']}/admin/{path}", json=body)

    async def gateway(self, method: str, path: str, body: Any = None, *, key: str = "supervisor",
                      ok: tuple[int, ...] = (200, 201, 202)) -> Any:
        return await self.call(method, f"{self.urls['gateway']}{path}", json=body, headers=self._auth(key), ok=ok)

    async def run_mes(self, order: DemoOrder, actions: list[dict[str, Any]]) -> None:
        """Run an MES script stamped to end now (its events are never ahead of the wall clock, so a shift
        summary run right after the demo holds them all), and after the order's previous script."""
        start = datetime.now(UTC) - timedelta(minutes=script.script_minutes(actions))
        if order.clock is not None:
            start = max(start, order.clock)
        result = await self.call("POST", f"{self.urls['mes']}/admin/run",
                                 json={"orderNo": order.number, "actions": actions, "startAt": start.isoformat(),
                                       "stepMin": script.STEP_MIN})
        if result.get("clock"):  # the runner's clock stands one step past the script's last event
            order.clock = datetime.fromisoformat(result["clock"]) - timedelta(minutes=script.STEP_MIN)
        if not result.get("ok"):
            raise DemoError(f"MES script of order {order.number} stopped: {result.get('error')}")
        self.counts.mes_events += len(result.get("events", []))

    async def order_view(self, order: DemoOrder) -> dict[str, Any]:
        view: dict[str, Any] = await self.gateway("GET", f"/v1/orders/{order.plant}/{order.number}")
        order.state = str(view["state"])
        return view

    # --- set-up --------------------------------------------------------------------------------

    async def setup(self) -> None:
        for p in script.PLANTS.values():  # raw material in the WMS, so staging finds stock
            await self.call("PUT", f"{self.urls['wms']}/admin/stock",
                            json={"material": p.component, "location": p.wms_location, "qty": "100000",
                                  "unit": p.wms_unit})
        await self.sap("PATCH", "rules", {"period_closed": False})
        if self.odoo is not None:
            await self.odoo.admin("PATCH", "settings", {"denied": {}})

    async def create(self, order: DemoOrder) -> None:
        await asyncio.sleep(order.index * 0.25)
        if order.erp == "odoo":
            assert self.odoo is not None
            created = await self.odoo.admin("POST", "productions", script.odoo_production(order.index))
            order.number = str(created["id"])  # plantbridge numbers an Odoo MO by its id (its name is WH/MO/...)
            order.stage = "Odoo webhook, saga starts, MES dispatch"
        else:
            created = await self.sap("POST", "orders", script.sap_order(order.index))
            order.number = str(created["ManufacturingOrder"]).lstrip("0")
            order.stage = "release in SAP"
            await self.sap("POST", f"orders/{order.number}/release")
            order.stage = "saga starts, MES dispatch"
        order.state = "released"

        async def dispatched() -> bool:
            got = await self.call("GET", f"{self.urls['mes']}/api/v2/workorders", params={"orderNo": order.number},
                                  headers={"X-API-Key": DEV_SECRETS["PLANTBRIDGE_DEV_MES_KEY"]})
            return any(w["status"] == "DISPATCHED" for w in got.get("items", []))

        await eventually(f"the MES work order of {order.number}", dispatched)

    async def settled(self, order: DemoOrder) -> bool:
        """No event of this order waits in the MES outbox and no ERP posting of it is in flight."""
        outbox = await self.call("GET", f"{self.urls['mes']}/admin/outbox",
                                 params={"order": order.number, "status": "pending"})
        if outbox["count"]:
            return False
        view = await self.order_view(order)
        steps = view["summary"]["steps"]
        return not any(s["kind"].startswith("erp.") and s["status"] in ("pending", "running") for s in steps)

    # --- phase 1 -------------------------------------------------------------------------------

    async def phase_one(self, order: DemoOrder) -> None:
        await self.create(order)
        if order.index == script.RAISE_ORDER:
            await self.raise_quantity(order)
        order.stage = "0010 started, partial reports"
        await self.run_mes(order, script.first_part(order.index, self.setup_of(order)))
        if order.index == script.DOWNTIME_ORDER and order.erp == "odoo":
            await self.mes_downtime(order)
            self.counts.downtimes += 1
            self.counts.maintenance_requests += 1
        elif order.index == script.DOWNTIME_ORDER:
            await self.machine_downtime(order)
            self.counts.downtimes += 1
            self.counts.maintenance_requests += 1
        if order.plant == "2000" and self.info.get("mqtt") and self.mqtt_machine is None:
            await self.mqtt_downtime(order)
            self.counts.downtimes += 1
        if order.index == script.HOLD_ORDER:
            await self.quality_hold(order)
        if order.index == script.DOWNTIME_ORDER:
            await self.resend_first_confirmation(order)
        if order.index == script.CANCEL_ORDER:
            await self.cancel(order)
            return
        order.stage = "waiting for the other orders"
        await eventually(f"order {order.number} to settle", lambda: self.settled(order))

    async def quality_hold(self, order: DemoOrder) -> None:
        order.stage = "quality hold (MES)"

        async def held() -> bool:
            return (await self.order_view(order))["on_hold"] is True

        await eventually(f"order {order.number} on hold", held)
        self.counts.holds += 1
        order.stage = "QA re-inspects"
        await asyncio.sleep(1.0)
        await self.gateway("POST", f"/v1/orders/{order.plant}/{order.number}/release-hold",
                           {"reason": "deburred and re-inspected, 20 of 20 OK"})

        async def released() -> bool:
            return (await self.order_view(order))["on_hold"] is False

        await eventually(f"order {order.number} off hold", released)
        self.counts.holds_released += 1
        # The saga lifts the hold in the MES; if it does not within a few seconds, the shift lead does.
        with contextlib.suppress(DemoError):
            await eventually(f"the MES hold of {order.number} lifted", lambda: self._mes_unheld(order), timeout_s=5)
            return
        result = await self.call("POST", f"{self.urls['mes']}/admin/run",
                                 json={"orderNo": order.number, "actions": [{"do": "unhold", "text": "released"}]})
        if not result.get("ok") and (result.get("error") or {}).get("errorCode") != "WO-409":
            raise DemoError(f"MES unhold of order {order.number} failed: {result.get('error')}")

    async def machine_downtime(self, order: DemoOrder) -> None:
        """Machine M01 runs the order, stops for maintenance, runs again: the edge agent reports it."""
        if "edge" not in self.info.get("pids", {}):
            raise DemoError("the demo's downtime comes from machine M01 through the edge agent, which is not running")
        order.stage = f"machine {script.MACHINE} down (OPC UA -> edge)"
        machines = f"{self.urls['machines']}/machines/{script.MACHINE}"
        await self.call("POST", f"{machines}/order", json={"order": order.number, "operation": "0010"})
        await self.call("POST", f"{machines}/run")
        await asyncio.sleep(1.0)
        await self.call("POST", f"{machines}/stop", json={"reason": "MAINT"})
        await asyncio.sleep(3.0)
        await self.call("POST", f"{machines}/run")

        async def reported() -> bool:
            timeline = (await self.order_view(order))["summary"]["timeline"]
            return any(t["text"].startswith("downtime_ended") for t in timeline)

        await eventually(f"downtime of {script.MACHINE} reported by the edge agent", reported)

    async def mes_downtime(self, order: DemoOrder) -> None:
        """The MES reported a downtime of the order's resource (its script): the saga's timeline shows it."""
        order.stage = f"{self.setup_of(order).mes_resource} down (MES)"

        async def reported() -> bool:
            timeline = (await self.order_view(order))["summary"]["timeline"]
            return any(t["text"].startswith("downtime_ended") for t in timeline)

        await eventually(f"downtime of {self.setup_of(order).mes_resource} reported by the MES", reported)

    async def mqtt_downtime(self, order: DemoOrder) -> None:
        """Plant 2000's machine publishes Sparkplug B to the local broker: it runs the order, stops, runs again;
        plant 2000's edge agent reports the downtime."""
        mqtt = self.info["mqtt"]
        broker = urlsplit(mqtt["url"])
        machine = mqtt["machine"]
        pub = self.mqtt_machine = MqttMachinePublisher(
            [MachineSpec(machine, work_center=script.PLANTS["2000"].work_centers[0])], host=broker.hostname or "",
            port=broker.port or 1883, mode="sparkplug", group=mqtt["group"], edge_node=mqtt["edge_node"])
        order.stage = f"machine {machine} down (Sparkplug B -> edge)"
        await pub.start()
        await pub.set_order(machine, order.number, "0010")
        await pub.run(machine)
        await asyncio.sleep(1.0)
        await pub.stop_machine(machine, "MAINT")
        await asyncio.sleep(3.0)
        await pub.run(machine)

        async def reported() -> bool:
            timeline = (await self.order_view(order))["summary"]["timeline"]
            return any(t["text"].startswith("downtime_ended") for t in timeline)

        await eventually(f"downtime of {machine} reported over MQTT by the edge agent", reported)

    async def _mes_unheld(self, order: DemoOrder) -> bool:
        wos = await self.call("GET", f"{self.urls['mes']}/api/v2/workorders", params={"orderNo": order.number},
                              headers={"X-API-Key": DEV_SECRETS["PLANTBRIDGE_DEV_MES_KEY"]})
        return not any(w["status"] == "ON_HOLD" for w in wos.get("items", []))

    async def resend_first_confirmation(self, order: DemoOrder) -> None:
        """The MES sends a confirmation again (a lost answer): the gateway answers `duplicate`."""
        outbox = await self.call("GET", f"{self.urls['mes']}/admin/outbox", params={"order": order.number})
        first = next((x for x in outbox["items"] if x["event"]["event_type"] == "operation_confirmed"), None)
        if first is None:
            return
        await eventually(f"delivery of {first['event_id']}", lambda: self._delivered(first["event_id"], order))
        answer = await self.gateway("POST", "/v1/plant/events", first["event"], key="plant-system")
        self.counts.resent += 1
        if answer.get("status") == "duplicate":
            self.counts.duplicates_answered += 1

    async def _delivered(self, event_id: str, order: DemoOrder) -> bool:
        outbox = await self.call("GET", f"{self.urls['mes']}/admin/outbox", params={"order": order.number})
        return any(x["event_id"] == event_id and x["status"] == "delivered" for x in outbox["items"])

    async def cancel(self, order: DemoOrder) -> None:
        await eventually(f"order {order.number} to settle before cancelling", lambda: self.settled(order))
        order.stage = "planner cancels"
        await self.gateway("POST", f"/v1/orders/{order.plant}/{order.number}/cancel",
                           {"reason": "customer order withdrawn"})

        async def done() -> bool:
            return str((await self.order_view(order))["state"]) == "cancelled"

        await eventually(f"order {order.number} cancelled", done)
        order.stage = "cancelled, compensated"
        self.counts.cancelled += 1

    # --- phase 2: SAP rejects a posting ----------------------------------------------------------

    async def rejected_posting(self, order: DemoOrder) -> None:
        if order.erp == "odoo":  # Odoo: the integration user loses a right (AccessError), an admin gives it back
            assert self.odoo is not None
            odoo = self.odoo
            what, fixed = "Odoo", "create right on work center time given back by the Odoo admin"

            async def break_it() -> None:
                await odoo.admin("PATCH", "settings", {"denied": {"mrp.workcenter.productivity": ["create"]}})

            async def fix_it() -> None:
                await odoo.admin("PATCH", "settings", {"denied": {}})
        else:
            what, fixed = "SAP", "period reopened by FI"

            async def break_it() -> None:
                await self.sap("PATCH", "rules", {"period_closed": True})

            async def fix_it() -> None:
                await self.sap("PATCH", "rules", {"period_closed": False})

        order.stage = "SAP period closed" if order.erp == "sap" else "Odoo: access right removed"
        await break_it()
        try:
            await self.run_mes(order, script.final_0010(order.index, self.setup_of(order)))
            order.stage = f"{what} rejected: exception"
            exc = await self._open_exception(order)
            self.counts.rejections[f"{order.plant}/{order.number}"] = str(exc.get("message", ""))
            self.counts.exceptions_opened += 1
            order.exceptions += 1
        finally:
            await fix_it()  # the supervisor has the cause fixed in the ERP
        order.stage = "supervisor retries"
        await self.gateway("POST", f"/v1/orders/{order.plant}/{order.number}/exceptions/{exc['id']}/resolve",
                           {"action": "retry", "comment": fixed})

        async def resolved() -> bool:
            view = await self.order_view(order)
            return not view["open_exceptions"]

        await eventually(f"exception {exc['id']} of {order.number} resolved", resolved)
        self.counts.exceptions_resolved += 1
        order.exceptions = 0

    async def _open_exception(self, order: DemoOrder) -> dict[str, Any]:
        found: dict[str, Any] = {}

        async def opened() -> bool:
            listing = await self.gateway("GET", f"/v1/exceptions?plant={order.plant}")
            for row in listing["orders"]:
                if str(row["order"]) == order.number and row["exceptions"]:
                    found.update(row["exceptions"][0])
                    return True
            return False

        await eventually(f"the exception of order {order.number}", opened)
        return found

    # --- phase 3 -------------------------------------------------------------------------------

    async def raise_quantity(self, order: DemoOrder) -> None:
        """The planner raises the quantity in SAP after release; the saga and the MES follow."""
        quantity = script.quantity_of(order.index)
        order.stage = f"SAP: quantity raised to {quantity}"
        await self.sap("POST", f"orders/{order.number}/change", {"quantity": str(quantity)})

        async def followed() -> bool:
            view = await self.order_view(order)
            got = await self.call("GET", f"{self.urls['mes']}/api/v2/workorders", params={"orderNo": order.number},
                                  headers={"X-API-Key": DEV_SECRETS["PLANTBRIDGE_DEV_MES_KEY"]})
            in_mes = [w for w in got.get("items", []) if w["status"] != "RECALLED"]
            return (float(view["summary"]["order"]["quantity"]["quantity"]) == quantity
                    and bool(in_mes) and float(in_mes[-1]["quantity"]) == quantity)

        await eventually(f"order {order.number} at {quantity} in the saga and the MES", followed)
        self.counts.order_changes += 1

    async def teco(self, order: DemoOrder) -> None:
        """SAP sets the order technically complete mid-run: it completes without further postings."""
        before = await self.sap_postings_of(order)
        order.stage = "SAP: TECO"
        await self.sap("POST", f"orders/{order.number}/status", {"action": "teco"})

        async def ended() -> bool:
            return (await self.order_view(order))["state"] in END_STATES

        await eventually(f"order {order.number} closed after TECO", ended)
        after = await self.sap_postings_of(order)
        if after != before:
            raise DemoError(f"order {order.number} got postings after TECO: {before} -> {after}")
        order.stage = "TECO: completed, no further postings"
        self.counts.order_changes += 1

    async def sap_postings_of(self, order: DemoOrder) -> int:
        state = await self.sap("GET", "state")
        keys = (order.number, order.number.zfill(12))
        return sum(1 for c in state["confirmations"]
                   if any(isinstance(v, str) and v in keys for k, v in c.items() if "Order" in k))

    async def phase_three(self, order: DemoOrder) -> None:
        if order.index == script.CANCEL_ORDER:
            return
        if order.index == script.TECO_ORDER:
            await self.teco(order)
            return
        if order.index != script.REJECT_ORDER:
            order.stage = "0010 final report"
            await self.run_mes(order, script.final_0010(order.index, self.setup_of(order)))
        order.stage = "0020 started and finished"
        await self.run_mes(order, script.operation_0020(order.index, self.setup_of(order)))
        order.stage = "goods receipt, completion"

        async def posted() -> bool:
            return (await self.order_view(order))["state"] in END_STATES

        await eventually(f"order {order.number} posted", posted, timeout_s=90)
        order.stage = "done"

    # --- the run -------------------------------------------------------------------------------

    async def poll_states(self) -> None:
        """Live states from the gateway's order list (Temporal visibility)."""
        by_number = {o.number: o for o in self.orders if o.number}
        for plant in sorted({o.plant for o in self.orders}):
            with contextlib.suppress(httpx.HTTPError, DemoError):
                listing = await self.gateway("GET", f"/v1/orders?plant={plant}")
                for row in listing["orders"]:
                    order = by_number.get(str(row["order"]))
                    if order is not None and row.get("state"):
                        order.state = str(row["state"])

    def view(self) -> Group:
        states = Counter(o.state for o in self.orders)
        head = Table(title=f"plantbridge demo · {len(self.orders)} orders · phase: {self.phase} · "
                           f"{time.monotonic() - self.started:.0f} s", title_justify="left")
        for state in states:
            head.add_column(state, justify="right")
        head.add_row(*[str(n) for n in states.values()])
        rows = Table(show_edge=False)
        for col in ("plant", "order", "state", "doing", "exceptions"):
            rows.add_column(col)
        for o in self.orders[:24]:
            colour = "green" if o.state == "posted" else "yellow" if o.state == "cancelled" else (
                "red" if o.state == "quality_hold" or o.exceptions else "white")
            rows.add_row(o.plant, o.label, f"[{colour}]{o.state}[/]", o.stage, str(o.exceptions or ""))
        return Group(head, rows)

    async def execute(self) -> None:
        await self.setup()
        self.phase = "1 · release, start, report"
        await asyncio.gather(*(self.phase_one(o) for o in self.orders))
        self.phase = "2 · SAP and Odoo reject a posting"
        await asyncio.gather(*(self.rejected_posting(lane[script.REJECT_ORDER])
                               for lane in (self.lane("sap"), self.lane("odoo")) if lane))
        self.phase = "3 · finish"
        await asyncio.gather(*(self.phase_three(o) for o in self.orders))
        self.phase = "done"

    async def run_live(self) -> BaseException | None:
        task = asyncio.create_task(self.execute())
        with Live(self.view(), console=self.console, refresh_per_second=4, transient=False) as live:
            while not task.done():
                await self.poll_states()
                live.update(self.view())
                await asyncio.wait({task}, timeout=0.5)
            await self.poll_states()
            live.update(self.view())
        return task.exception()

    # --- the summary ---------------------------------------------------------------------------

    async def sap_postings(self) -> tuple[Counter[str], int]:
        """Postings of this run's orders in SAP's own data, by type; duplicates (same external key)."""
        state = await self.sap("GET", "state")
        mine = {o.number for o in self.lane("sap") if o.number}
        mine |= {n.zfill(12) for n in mine}

        def ours(row: dict[str, Any]) -> bool:
            return any(isinstance(v, str) and v in mine for k, v in row.items() if "Order" in k)

        counts: Counter[str] = Counter()
        keys: Counter[tuple[str, str]] = Counter()
        for c in state["confirmations"]:
            if ours(c):
                counts["confirmations"] += 1
                keys["conf", str(c.get("ExternalSystemConfirmation") or "")] += 1
        for d in state["material_documents"]:
            items = [i for i in d.get("items", []) if ours(i)]
            if not items:
                continue
            counts["material documents"] += 1
            for movement in sorted({str(i.get("GoodsMovementType")) for i in items}):
                counts[f"  movement {movement}"] += 1
            keys["matdoc", str(d.get("MaterialDocumentHeaderText") or "")] += 1
        lots = {str(lot.get("InspectionLot")) for lot in state["inspection_lots"] if ours(lot)}
        for ud in state["usage_decisions"]:
            if str(ud.get("InspectionLot")) in lots:
                counts["usage decisions"] += 1
                keys["ud", str(ud.get("InspectionLot"))] += 1
        for n in state["notifications"]:
            ref = str(n.get("MaintNotifExtReferenceNumber") or "")
            if ours(n) or any(o in json.dumps(n) for o in mine):
                counts["maintenance notifications"] += 1
                keys["notif", ref] += 1
        duplicates = sum(n - 1 for (kind, key), n in keys.items() if key and n > 1)
        return counts, duplicates

    async def summary(self, elapsed: float, error: BaseException | None) -> bool:
        postings, duplicates = await self.sap_postings()
        odoo: OdooCount | None = None
        if self.odoo is not None:
            odoo = await count_odoo(self.odoo, {int(o.number): o.expected for o in self.lane("odoo") if o.number})
        self.console.print()
        table = Table(title="plantbridge demo · summary", title_justify="left")
        table.add_column("what")
        table.add_column("count", justify="right")
        for state, n in sorted(Counter(o.state for o in self.orders).items()):
            table.add_row(f"orders {state}", str(n))
        for kind, n in sorted(postings.items(), key=lambda kv: kv[0].strip()):
            table.add_row(f"SAP {kind}", str(n))
        table.add_row("duplicate postings in SAP (same external key)", str(duplicates))
        if odoo is not None:
            for state, n in sorted(odoo.mos.items()):
                table.add_row(f"Odoo manufacturing orders {state}", str(n))
            for kind, n in sorted(odoo.records.items()):
                table.add_row(f"Odoo {kind}", str(n))
            table.add_row("Odoo records with two __plantbridge__ ids", str(len(odoo.doubled)))
            table.add_row("Odoo records of plantbridge without one", str(len(odoo.unbound)))
        table.add_row("MES events sent / resent", f"{self.counts.mes_events} / {self.counts.resent}")
        table.add_row("resent events answered duplicate", str(self.counts.duplicates_answered))
        table.add_row("exceptions opened / resolved", f"{self.counts.exceptions_opened} / "
                                                      f"{self.counts.exceptions_resolved}")
        table.add_row("quality holds / released", f"{self.counts.holds} / {self.counts.holds_released}")
        table.add_row("downtimes · maintenance requests", f"{self.counts.downtimes} · "
                                                          f"{self.counts.maintenance_requests}")
        table.add_row("ERP order changes after release (quantity raised, TECO)", str(self.counts.order_changes))
        table.add_row("elapsed", f"{elapsed:.1f} s")
        self.console.print(table)
        for where, text in sorted(self.counts.rejections.items()):
            self.console.print(f"rejected and retried, order {where}: {text.splitlines()[0][:160] if text else '-'}")
        plants = " OR ".join(f"Plant='{p}'" for p in sorted({o.plant for o in self.orders}))
        self.console.print(f"Temporal UI: {self.urls['ui']}/namespaces/default/workflows?query={quote(plants)}")
        wrong = [o for o in self.orders if o.state != o.expected]
        odoo_bad = [] if odoo is None else [*(f"doubled in Odoo: {r}" for r in odoo.doubled),
                                            *(f"no __plantbridge__ id in Odoo: {r}" for r in odoo.unbound),
                                            *odoo.not_done]
        ok = error is None and not wrong and duplicates == 0 and not odoo_bad
        if error is not None:
            self.console.print(f"[bold red]demo stopped:[/] {error}")
        for o in wrong:
            self.console.print(f"[red]order {o.label} (plant {o.plant}) is {o.state}, expected {o.expected}[/]")
        for line in odoo_bad:
            self.console.print(f"[red]{line}[/]")
        self.console.print("[bold green]every order posted or cancelled as scripted, no duplicate postings[/]" if ok
                           else "[bold red]the demo did not end clean[/]")
        self.last = {"ok": ok, "states": {o.number: o.state for o in self.lane("sap")}, "duplicates": duplicates,
                     "postings": dict(postings), "elapsed_s": round(elapsed, 1),
                     "rejections": dict(self.counts.rejections)}
        if odoo is not None:
            self.last["odoo"] = {"states": {o.number: o.state for o in self.lane("odoo")}, "mos": dict(odoo.mos),
                                 "records": dict(odoo.records), "doubled": odoo.doubled, "unbound": odoo.unbound,
                                 "not_done": odoo.not_done}
        return ok

    async def aclose(self) -> None:
        if self.mqtt_machine is not None:
            await self.mqtt_machine.stop()
        if self.odoo is not None:
            await self.odoo.aclose()
        await self.http.aclose()


async def running_dev(state_dir: Path) -> dict[str, Any] | None:
    """The dev.json of a running `plantbridge dev` whose gateway answers, else None."""
    info = read_dev_file(state_dir)
    if info is None or not info.get("api_keys"):
        return None
    urls = info.get("urls", {})
    headers = {"Authorization": f"Bearer {info['api_keys'].get('supervisor', '')}"}
    checks = [http_ok(f"{urls.get('gateway')}/v1/orders?plant=1000", headers),
              http_ok(f"{urls.get('sap')}/admin/health"), http_ok(f"{urls.get('mes')}/admin/health"),
              http_ok(f"{urls.get('wms')}/admin/health")]
    if urls.get("odoo"):
        checks.append(http_ok(f"{urls['odoo']}/admin/health"))
    return info if all(await asyncio.gather(*checks)) else None


async def run_demo(orders: int, console: Console, state_dir: Path = Path(".plantbridge"),
                   result: dict[str, Any] | None = None) -> bool:
    """Run the demo; True when every order ended as scripted and neither SAP nor Odoo holds a doubled posting
    (nor, in Odoo, a record of plantbridge's without its external id, nor an MO not done that should be)."""
    started = time.monotonic()
    async with contextlib.AsyncExitStack() as stack:
        info = await running_dev(state_dir)
        if info is not None:
            console.print(f"using the running `plantbridge dev` ({state_dir / 'dev.json'})")
        else:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="plantbridge-demo-")))
            console.print("no running `plantbridge dev` found: starting a stack of its own on free ports "
                          "(run `plantbridge dev` first to keep it and browse the orders in the UI)")
            dev = Stack(tmp / "state", Ports.free(), grace_s=10.0)
            with console.status("starting the stack…"):
                await dev.start()
            stack.callback(dev.stop)
            info = dev.info()
        demo = PlantDemo(info, orders, console)
        stack.push_async_callback(demo.aclose)
        error = await demo.run_live()
        ok = await demo.summary(time.monotonic() - started, error)
        if result is not None:
            result.update(demo.last)
        if error is not None:
            console.print(f"logs: {info.get('state_dir')}/*.log")
        if info.get("pid") == os.getpid():
            console.print("(this stack stops now; run `plantbridge dev` first to keep the orders in the UI)")
        return ok
    return False
