"""`plantbridge dev`: the embedded stack on one machine, for trying plantbridge and for the demo."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from plantbridge.workers.settings import Settings
from plantbridge.workers.temporal_server import DevServer


async def run_dev(state_dir: Path, *, port: int, ui_port: int, console: Console) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    server = DevServer(db_file=state_dir / "temporal.db", port=port, ui_port=ui_port,
                       log_file=state_dir / "temporal.log")
    await server.start()
    settings = Settings.from_env(
        temporal_address=server.address,
        store_url=f"sqlite+aiosqlite:///{(state_dir / 'plantbridge.db').resolve()}",
        reference_url=f"sqlite+aiosqlite:///{(state_dir / 'reference-systems.db').resolve()}",
    )
    env = {**os.environ, **{f"PLANTBRIDGE_{k.upper()}": str(v) for k, v in settings.model_dump().items()}}
    worker = subprocess.Popen([sys.executable, "-m", "plantbridge.workers.cli", "worker"], env=env,
                              start_new_session=True)
    info = {
        "urls": {"temporal": server.address, "ui": server.ui_url},
        "pids": {"temporal": server.process.pid if server.process else None, "worker": worker.pid},
        "api_keys": {},
    }
    (state_dir / "dev.json").write_text(json.dumps(info, indent=2))
    console.print(f"[bold green]plantbridge dev[/] Temporal {server.address} · UI [link]{server.ui_url}[/link]")
    console.print(f"worker pid {worker.pid} · state in {state_dir.resolve()} · Ctrl-C to stop")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        while not stop.is_set() and worker.poll() is None:
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except TimeoutError:
                pass
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        server.stop()
        (state_dir / "dev.json").unlink(missing_ok=True)
