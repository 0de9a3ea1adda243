"""`plantbridge dev`: the whole local stack in one process tree, until Ctrl-C / SIGTERM.

Temporal dev server (SQLite, UI), the SAP / Odoo / MES / QMS / WMS / machine simulators, the worker, the
gateway and the edge agent hook (see `stack.py`). Writes `<state dir>/dev.json` once every service
answers; removes it when it stops. A child that dies is restarted with backoff (supervise.py).
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from rich.console import Console
from rich.table import Table

from plantbridge import contract
from plantbridge_devtools.stack import Ports, Stack, StackError
from plantbridge_devtools.supervise import Supervisor


def urls_table(stack: Stack) -> Table:
    table = Table(title=f"plantbridge dev · state in {stack.state_dir}", title_justify="left")
    table.add_column("service")
    table.add_column("address")
    table.add_column("pid", justify="right")
    table.add_column("health")
    u = stack.urls
    where = {"temporal": u.temporal, "sap": f"{u.sap}/sap/opu/odata/sap/ (plants 1000, 2000)",
             "odoo": f"{u.odoo}/json/2/ (plant 3000, Odoo 19.0, database odoo)", "mes": f"{u.mes}/api/v2",
             "qms": u.qms, "wms": u.wms, "machines": f"{u.opcua} (control {u.machines})", "worker": "task queue "
             + contract.TASK_QUEUE, "gateway": f"{u.gateway} (OpenAPI {u.gateway}/docs)", "edge": "→ gateway",
             "edge-2000": f"{stack.mqtt} (Sparkplug group {stack.mqtt_group}) → gateway",
             "codec": f"{u.codec} (the UI decodes payloads here; others need a supervisor key)"}
    for s in stack.services:
        state = "[green]up[/]" if s.healthy and s.alive() else ("[yellow]running[/]" if s.alive() else "[red]down[/]")
        table.add_row(s.name, where.get(s.name, s.url or ""), str(s.pid or ""), state)
    table.add_row("Temporal UI", u.ui, "", "")
    return table


async def run_dev(state_dir: Path, *, ports: Ports | None = None, console: Console,
                  stop_event: asyncio.Event | None = None) -> int:
    """Run the stack until SIGINT/SIGTERM (or `stop_event`), restarting children that die (supervise.py);
    0 on a clean stop, 1 when a service kept dying."""
    stack = Stack(state_dir, ports)
    stop = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        with console.status("starting the plantbridge dev stack…"):
            start = asyncio.create_task(stack.start())
            waiter = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait({start, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if start not in done:  # interrupted while starting
                start.cancel()
                try:
                    await start
                except (asyncio.CancelledError, StackError):
                    pass
                stack.stop()
                return 1
            waiter.cancel()
            start.result()
    except StackError as err:
        console.print(f"[bold red]plantbridge dev could not start:[/] {err}")
        return 1
    console.print(urls_table(stack))
    if stack.mqtt is not None:
        console.print(f"MQTT: the local broker {stack.mqtt} · plant 2000's machine M20 (Sparkplug B) · the Unified "
                      f"Namespace under {stack.info()['mqtt']['uns']}")
    else:
        console.print("MQTT: no broker answers on 127.0.0.1:1883; none started (plant 2000's MQTT machine and the "
                      "Unified Namespace are off)")
    console.print(f"dev keys and URLs in {stack.dev_file} · `plantbridge demo` uses them · Ctrl-C stops everything")
    console.print(f"other `plantbridge` commands (batch, status, export) reach this stack after "
                  f"`source {stack.env_file}`")
    code = 0
    supervisor = Supervisor(stack, lambda line: console.print(f"[yellow]{line}[/]"))
    try:
        while not stop.is_set():
            fatal = supervisor.tick()
            if fatal:
                console.print(f"[bold red]{', '.join(s.name for s in fatal)} keeps exiting; stopping[/]")
                code = 1
                stop.set()
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except TimeoutError:
                pass
    finally:
        console.print("stopping…")
        await asyncio.to_thread(stack.stop)
        console.print("[green]plantbridge dev stopped[/]")
    return code
