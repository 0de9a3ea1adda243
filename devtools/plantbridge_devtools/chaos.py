"""`plantbridge chaos`: the demo workload on a dev stack of its own while things break; then the count.

For `--minutes N` it runs rounds of the demo (SAP and Odoo lanes, every scripted happening) while, one
after the other, it SIGKILLs the Temporal server, the worker and the gateway, restarts the OPC UA machine
server and takes the gateway away from the edge agents for a while (they reach it through a proxy of
this process); the dev supervisor (supervise.py) restarts what was killed. All along, the SAP and Odoo
simulators answer about one call in five of plantbridge's with a 5xx, a hang or a lost answer (committed,
then the answer replaced: only the external-key look-up keeps it from being posted twice). The
simulated plant systems send again as real ones do (the MES outbox; the demo's calls, resend.py).

Then, with the faults off and every service back, it counts (chaos_check.py): orders finished, events
answered 2xx that no saga has seen and none refused (lost), postings in SAP's and Odoo's own data with an
external key twice (doubled) or without one (unkeyed). Exit code 1 if any is not 0 or an order did not end.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from plantbridge.client import connect
from plantbridge.security.codec import codec_from_env
from plantbridge_devtools import chaos_check
from plantbridge_devtools.demo import END_STATES, PATIENCE, DemoOrder, PlantDemo
from plantbridge_devtools.stack import HOST, Ports, Service, Stack
from plantbridge_devtools.supervise import Supervisor
from plantbridge_devtools.temporal_server import free_port

DISRUPTIONS = ("temporal", "worker", "gateway", "machines", "edge-link")


@dataclass(frozen=True)
class Storm:
    """The faults of the SAP and Odoo simulators (of plantbridge's calls; their admin APIs are spared)."""

    error_ratio: float = 0.12  # 503 from SAP's ICM / 502 from the proxy in front of Odoo
    hang_ratio: float = 0.04  # the call hangs `hang_s`, then a 503/504
    lost_ratio: float = 0.04  # committed, then the answer is lost (503/502)
    hang_s: float = 8.0
    edge_away_s: float = 12.0  # how long the edge agents cannot reach the gateway
    seed: int = 16

    def sap(self) -> dict[str, Any]:
        return {"error_503_ratio": self.error_ratio, "hang_ratio": self.hang_ratio, "hang_seconds": self.hang_s,
                "after_commit_ratio": self.lost_ratio, "after_commit_mode": "503", "seed": self.seed}

    def odoo(self) -> dict[str, Any]:
        return {"error_5xx_ratio": self.error_ratio, "hang_ratio": self.hang_ratio, "hang_seconds": self.hang_s,
                "lost_answer_ratio": self.lost_ratio, "lost_mode": "502", "seed": self.seed}


@dataclass
class Figures:
    minutes: float
    rounds: int = 0
    orders: int = 0
    finished: int = 0
    unfinished: list[str] = field(default_factory=list)
    events_answered_2xx: int = 0
    refused: int = 0
    lost: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)  # orders whose saga could not be asked (and why)
    doubled: list[str] = field(default_factory=list)
    unkeyed: list[str] = field(default_factory=list)
    postings: dict[str, int] = field(default_factory=dict)
    disruptions: dict[str, int] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    calls_resent: int = 0
    round_errors: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.unverified or self.doubled or self.unkeyed or self.unfinished) and self.orders > 0


class EdgeLink:
    """A TCP proxy between the edge agents and the gateway that can be cut for a while."""

    def __init__(self) -> None:
        self.port = free_port()
        self.target_port = 0
        self.cut = False
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def start(self, target_port: int) -> None:
        self.target_port = target_port
        self._server = await asyncio.start_server(self._serve, HOST, self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self.target_port)
        except OSError:
            writer.close()
            return
        self._open |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._open -= {writer, up_writer}

    async def away(self, seconds: float) -> None:
        self.cut = True
        for w in list(self._open):
            w.close()
        await asyncio.sleep(seconds)
        self.cut = False

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for w in list(self._open):
                w.close()


class Chaos:
    def __init__(self, stack: Stack, link: EdgeLink, storm: Storm, say: Any) -> None:
        self.stack, self.link, self.storm_cfg, self.say = stack, link, storm, say
        self.supervisor = Supervisor(stack, say, base_s=0.5, max_s=4.0, give_up_after=30)
        self.done: Counter[str] = Counter()

    def service(self, name: str) -> Service:
        return next(s for s in self.stack.services if s.name == name)

    async def supervise(self) -> None:
        while True:
            self.supervisor.tick()
            await asyncio.sleep(0.3)

    async def back(self, name: str, timeout_s: float = 120.0) -> None:
        """Wait until the supervisor restarted `name` and it answers its health check."""
        service = self.service(name)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if service.alive() and (service.health is None or await service.health()):
                return
            await asyncio.sleep(0.5)
        self.say(f"{name} did not come back within {timeout_s:.0f} s")

    async def disrupt(self, what: str) -> None:
        self.done[what] += 1
        if what == "edge-link":
            self.say(f"the edge agents lose the gateway for {self.storm_cfg.edge_away_s:.0f} s")
            await self.link.away(self.storm_cfg.edge_away_s)
            return
        service = self.service(what)
        sig = signal.SIGTERM if what == "machines" else signal.SIGKILL  # the OPC UA server is restarted
        self.say(f"{'restart' if sig == signal.SIGTERM else 'SIGKILL'} {what} (pid {service.pid})")
        if service.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(service.process.pid, sig)
            await asyncio.to_thread(service.process.wait)
        await self.back(what)

    async def storm_on(self, on: bool) -> None:
        urls = self.stack.urls
        async with httpx.AsyncClient(timeout=10) as http:
            if on:
                await http.put(f"{urls.sap}/admin/faults", json=self.storm_cfg.sap())
                await http.put(f"{urls.odoo}/admin/faults", json=self.storm_cfg.odoo())
            else:
                await http.delete(f"{urls.sap}/admin/faults")
                await http.delete(f"{urls.odoo}/admin/faults")

    async def storm(self, window_s: float) -> None:
        """The faults on; every disruption once per cycle (a cycle a minute), spread over the window (the last
        one may run past it: each waits for its service to be back); then the faults off."""
        await self.storm_on(True)
        self.say(f"storm on: SAP and Odoo {self.storm_cfg.error_ratio:.0%} 5xx, {self.storm_cfg.hang_ratio:.0%} hangs "
                 f"of {self.storm_cfg.hang_s:.0f} s, {self.storm_cfg.lost_ratio:.0%} lost answers (of each call)")
        cycles = max(1, round(window_s / 60))
        pause = window_s / (len(DISRUPTIONS) * cycles)
        end = time.monotonic() + window_s
        for _ in range(cycles):
            for what in DISRUPTIONS:
                await asyncio.sleep(pause)
                await self.disrupt(what)
        await asyncio.sleep(max(0.0, end - time.monotonic()))
        await self.storm_on(False)
        self.say("storm off")


async def run_rounds(info: dict[str, Any], orders: int, until: float, figures: Figures,
                     all_orders: list[DemoOrder], demos: list[PlantDemo]) -> None:
    quiet = Console(file=io.StringIO())
    while True:
        demo = PlantDemo(info, orders, quiet)
        demos.append(demo)
        figures.rounds += 1
        try:
            await demo.execute()
        except Exception as err:  # counted; its orders are checked like the others
            figures.round_errors.append(f"round {figures.rounds}: {type(err).__name__}: {err}"[:300])
        all_orders.extend(o for o in demo.orders if o.number)
        if time.monotonic() >= until:
            return


async def settle(stack: Stack, demos: list[PlantDemo], timeout_s: float) -> None:
    """Until the MES outbox is empty and every order ended (or `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=10) as http:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                pending = (await http.get(f"{stack.urls.mes}/admin/outbox", params={"status": "pending"})).json()
                for demo in demos:
                    await demo.poll_states()
                if not pending["count"] and all(o.state in END_STATES for d in demos for o in d.orders if o.number):
                    return
            await asyncio.sleep(1.0)


async def count(stack: Stack, demos: list[PlantDemo], figures: Figures) -> None:
    orders = [o for d in demos for o in d.orders if o.number]
    figures.orders = len(orders)
    figures.finished = sum(o.state in END_STATES for o in orders)
    figures.unfinished = [f"{o.plant}/{o.number} {o.state}" for o in orders if o.state not in END_STATES]
    async with httpx.AsyncClient(timeout=30) as http:
        outbox = (await http.get(f"{stack.urls.mes}/admin/outbox")).json()["items"]
        sap_state = (await http.get(f"{stack.urls.sap}/admin/state")).json()
    answers = chaos_check.answered_2xx(outbox)
    for edge_outbox in sorted(stack.state_dir.glob("edge-*-outbox.db")):
        answers += chaos_check.edge_answered_2xx(edge_outbox)
    client = await connect(stack.urls.temporal, codec=codec_from_env(stack.env()))
    seen, unasked = await chaos_check.sagas_seen(client, {(a.plant, a.order) for a in answers})
    lost = chaos_check.lost_events(answers, seen, frozenset((k.split("/", 1)[0], k.split("/", 1)[1]) for k in unasked))
    figures.events_answered_2xx, figures.refused, figures.lost = lost.answered, lost.refused, lost.lost
    figures.unverified = [f"{k}: {why}" for k, why in sorted(unasked.items())]
    odoo = demos[0].odoo if demos else None
    odoo_orders = {int(o.number): o.expected for d in demos for o in d.lane("odoo") if o.number}
    audit = await chaos_check.audit_erps(sap_state, odoo, odoo_orders)
    figures.doubled, figures.unkeyed, figures.postings = audit.doubled, audit.unkeyed, dict(audit.postings)


async def run_chaos(minutes: float, *, orders: int, console: Console, storm: Storm | None = None,
                    state_dir: Path | None = None, out: Path | None = None) -> Figures:
    storm = storm or Storm()
    figures = Figures(minutes=minutes)
    started = time.monotonic()

    def say(line: str) -> None:
        console.print(f"[yellow]{time.monotonic() - started:6.1f} s  {line}[/]")

    with contextlib.ExitStack() as exits:
        root = state_dir or Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="plantbridge-chaos-")))
        link = EdgeLink()
        stack = Stack(root / "state", Ports.free(), grace_s=10.0, edge_gateway=link.url)
        await link.start(stack.ports.gateway)
        with console.status("starting the dev stack…"):
            await stack.start()
        exits.callback(stack.stop)
        chaos = Chaos(stack, link, storm, say)
        supervising = asyncio.create_task(chaos.supervise())
        demos: list[PlantDemo] = []
        try:
            PATIENCE.set(5.0)
            window = minutes * 60
            breaking = asyncio.create_task(chaos.storm(window))
            await run_rounds(stack.info(), orders, time.monotonic() + window, figures, [], demos)
            await breaking  # the last disruption is over, its service back, the faults off
            say("waiting for the stack to settle")
            for name in ("temporal", "worker", "gateway", "machines"):
                await chaos.back(name)
            await settle(stack, demos, 180.0)
            await count(stack, demos, figures)
        finally:
            supervising.cancel()
            for demo in demos:
                with contextlib.suppress(Exception):
                    await demo.aclose()
            await link.stop()
        figures.disruptions = dict(chaos.done)
        figures.restarts = chaos.supervisor.restarts()
        figures.calls_resent = sum(d.counts.calls_resent for d in demos)
        figures.elapsed_s = round(time.monotonic() - started, 1)
    print_figures(console, figures)
    if out is not None:
        out.write_text(json.dumps({**asdict(figures), "ok": figures.ok}, indent=2), encoding="utf-8")
    return figures


def print_figures(console: Console, f: Figures) -> None:
    table = Table(title=f"plantbridge chaos · {f.minutes:g} min · {f.rounds} demo rounds", title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("orders finished (posted or cancelled)", f"{f.finished} / {f.orders}")
    table.add_row("plant events answered 2xx", str(f.events_answered_2xx))
    table.add_row("  of which refused by the saga", str(f.refused))
    table.add_row("lost (answered 2xx, in no saga, not refused)", str(len(f.lost)))
    table.add_row("orders whose saga could not be asked (unverified)", str(len(f.unverified)))
    table.add_row("doubled (an external key twice in SAP / Odoo)", str(len(f.doubled)))
    table.add_row("unkeyed (a posting without an external key)", str(len(f.unkeyed)))
    for kind, n in sorted(f.postings.items()):
        table.add_row(f"  {kind}", str(n))
    table.add_row("disruptions", ", ".join(f"{k} {n}" for k, n in sorted(f.disruptions.items())) or "-")
    table.add_row("restarts by the supervisor", ", ".join(f"{k} {n}" for k, n in sorted(f.restarts.items())) or "-")
    table.add_row("calls the demo sent again", str(f.calls_resent))
    table.add_row("elapsed", f"{f.elapsed_s:.0f} s")
    console.print(table)
    for line in [*f.round_errors, *(f"unfinished: {u}" for u in f.unfinished), *(f"lost: {x}" for x in f.lost),
                 *(f"saga not asked: {x}" for x in f.unverified),
                 *(f"doubled: {x}" for x in f.doubled), *(f"unkeyed: {x}" for x in f.unkeyed)][:40]:
        console.print(f"[red]{line}[/]")
    console.print(f"lost {len(f.lost)}, doubled {len(f.doubled)}, unkeyed {len(f.unkeyed)}, "
                  f"unfinished {len(f.unfinished)}: " + ("[bold green]clean[/]" if f.ok else "[bold red]NOT clean[/]"))
