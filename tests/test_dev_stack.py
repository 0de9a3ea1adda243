"""`plantbridge dev` as a user runs it (a subprocess, free ports, its own state dir), then the demo
against it, then SIGTERM: every child process is gone and dev.json removed."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from google.protobuf.json_format import MessageToDict
from rich.console import Console

from plantbridge_devtools.demo import run_demo
from plantbridge_devtools.stack import pid_alive


def wait_for_dev_json(path: Path, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert proc.poll() is None, f"plantbridge dev exited {proc.returncode}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no dev.json after {timeout_s} s:\n{log.read_text()[-3000:]}"
        time.sleep(0.3)
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def decode(url: str, payloads: list[Any], headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(url, json={"payloads": payloads}, headers=headers, timeout=10)


def answers(url: str, headers: dict[str, str] | None = None) -> int:
    return httpx.get(url, headers=headers, timeout=10).status_code


async def test_dev_stack_runs_the_demo_and_stops_clean(tmp_path: Path) -> None:
    state = tmp_path / "state"
    log = tmp_path / "dev.out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLANTBRIDGE_")}
    env["COLUMNS"] = "120"
    proc = subprocess.Popen([sys.executable, "-m", "plantbridge.workers.cli", "dev", "--state-dir", str(state),
                             "--free-ports"], stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    pids: dict[str, int] = {}
    try:
        info = wait_for_dev_json(state / "dev.json", proc, log)
        urls, pids, keys = info["urls"], info["pids"], info["api_keys"]
        assert set(urls) >= {"temporal", "ui", "gateway", "sap", "mes", "qms", "wms", "opcua", "codec"}
        assert set(keys) == {"erp", "plant-system", "qms", "edge", "supervisor"}
        assert {"temporal", "sap", "mes", "qms", "wms", "machines", "worker", "gateway", "codec"} <= set(pids)
        defaults = {"127.0.0.1:7233", "http://127.0.0.1:8233", "http://127.0.0.1:8080", "http://127.0.0.1:8101"}
        assert not defaults & {urls["temporal"], urls["ui"], urls["gateway"], urls["sap"]}, urls
        assert all(pid_alive(pid) for pid in pids.values()), pids
        supervisor = {"Authorization": f"Bearer {keys['supervisor']}"}
        assert answers(f"{urls['gateway']}/v1/orders?plant=2000", supervisor) == 200
        assert answers(f"{urls['gateway']}/v1/orders?plant=1000") == 401
        for name in ("sap", "mes", "qms", "wms"):
            assert answers(f"{urls[name]}/admin/health") == 200, name
        assert answers(urls["ui"]) == 200
        # The codec server: 401 without credentials, decodes for a supervisor key; the UI is pointed
        # at it with the stack's path secret (in its command line, not in dev.json).
        assert decode(f"{urls['codec']}/decode", []).status_code == 401
        assert decode(f"{urls['codec']}/decode", [], supervisor).status_code == 200
        ui_codec = re.search(r"--ui-codec-endpoint (\S+)", (state / "temporal.log").read_text())
        assert ui_codec is not None and ui_codec.group(1).startswith(urls["codec"] + "/")
        assert answers(f"{urls['machines']}/health") == 200
        assert urls["opcua"].startswith("opc.tcp://127.0.0.1:")
        for name in ("temporal", "sap", "gateway", "worker"):
            assert (state / f"{name}.log").exists()

        result: dict[str, Any] = {}
        ok = await run_demo(4, Console(file=(tmp_path / "demo.out").open("w"), width=120), state_dir=state,
                            result=result)
        assert ok, (tmp_path / "demo.out").read_text()[-4000:]
        assert result["duplicates"] == 0
        assert sorted(result["states"].values()) == ["cancelled", "posted", "posted", "posted"]
        assert result["postings"]["confirmations"] >= 9 and result["postings"]["maintenance notifications"] == 1
        # Temporal's history holds no clear order data: the dev stack encrypts payloads.
        from plantbridge.client import connect
        raw = await connect(urls["temporal"], codec=None)
        async for wf in raw.list_workflows("WorkflowType = 'ProductionOrder'"):
            async for ev in raw.get_workflow_handle(wf.id).fetch_history_events():
                if ev.HasField("workflow_execution_started_event_attributes"):
                    [payload] = ev.workflow_execution_started_event_attributes.input.payloads
                    assert payload.metadata["encoding"] == b"binary/encrypted"
                    # ... which the UI's codec endpoint (the path secret) decodes for the developer.
                    r = decode(f"{ui_codec.group(1)}/decode", [MessageToDict(payload)])
                    assert r.status_code == 200, r.text
                    [clear] = r.json()["payloads"]
                    assert wf.id.split(":")[-1] in base64.b64decode(clear["data"]).decode()
            break
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    assert code == 0, log.read_text()[-3000:]
    assert not (state / "dev.json").exists()
    assert "plantbridge dev stopped" in log.read_text()
    alive = {name: pid for name, pid in pids.items() if pid_alive(pid)}
    assert not alive, alive
