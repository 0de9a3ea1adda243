"""Master-data check: a plant's cross-references against the MES simulator's own lists (real HTTP)
and the work centers of the plant's running order sagas (real Temporal dev server, conftest's saga
worker); `plantbridge batch run masterdata-check` and `plantbridge status` show the findings, the
job's last run, outcome and next run."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from rich.console import Console
from temporalio.client import Client
from temporalio.worker import Worker
from typer.testing import CliRunner

from plantbridge.activities.batch import BatchActivities
from plantbridge.canonical.plant_config import PlantConfig
from plantbridge.client import start_order
from plantbridge.store import Database, sqlite_url
from plantbridge.workers import batch_cli
from plantbridge.workers import cli as cli_module
from plantbridge.workers.batch_status import collect_batch_status
from plantbridge.workers.cli import app
from plantbridge.workers.schedules import sync_schedules
from plantbridge.workflows.batch.masterdata_check import MasterDataCheckWorkflow
from plantbridge_devtools.simulators.mes.server import MesServer
from plantbridge_devtools.temporal_server import DevServer
from tests.batch.test_shift_schedule import eventually
from tests.conftest import fast_policy, new_order, qty


@pytest.fixture
def mes_url(tmp_path: Path) -> Iterator[str]:
    with MesServer(str(tmp_path / "mes.db")) as server:
        yield server.url


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Database]:
    db = await Database(sqlite_url(tmp_path / "pb.db")).init()
    yield db
    await db.close()


async def test_masterdata_check_reports_unmapped_and_stale_codes(
        client: Client, worker: object, temporal_server: DevServer, store: Database, mes_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    plant = f"6{uuid.uuid4().int % 1000:03d}"
    monkeypatch.setenv("TEST_MES_KEY", "mes-dev-key")
    cfg = PlantConfig.model_validate({
        "plant": plant, "name": "Master data plant", "timezone": "Europe/Berlin",
        "mes": {"kind": "rest", "url": mes_url, "api_key_env": "TEST_MES_KEY"},
        "work_centers": [{"code": "ASSY-01"}, {"code": "TEST-01"}],
        "xref": {"work_centers": {"L1-ASSY": "ASSY-01", "L3-TEST": "TEST-01", "L9-GONE": "TEST-01"},
                 "units": {"PCS": "H87", "SET": "H87", "KG": "KGM", "G": "GRM", "M": "MTR", "L": "LTR",
                           "BOX": "H87"},
                 "reasons": {"S-SCRATCH": "SCR1", "S-DENT": "SCR2", "S-DIM": "SCR3", "S-MATL": "SCR4",
                             "S-SETUP": "SCR5", "S-OTHER": "SCR6", "D-MECH": "BRK1", "D-ELEC": "BRK2",
                             "D-NOMAT": "MAT1", "D-NOOP": "OPR1", "D-SETUP": "SET1", "D-QUAL": "QUA1",
                             "D-PLAN": "PLN1", "H-QUAL": "HQ", "H-MATL": "HM", "H-ENG": "HE",
                             "D-OLD": "BRK9"}},
        "batch": {"jobs": ["masterdata-check"]},
    })
    # A released order of the plant whose second operation runs on a work center nobody maps.
    order = new_order(plant, components=False, operations=[
        {"number": "0010", "work_center": "ASSY-01", "planned_qty": qty(10)},
        {"number": "0020", "work_center": "PAINT-07", "planned_qty": qty(10)}])
    await start_order(client, order, fast_policy())

    async def visible() -> bool:
        return bool([w async for w in client.list_workflows(f"Plant = '{plant}' AND ExecutionStatus = 'Running'")])

    await eventually(visible)
    queue = f"masterdata-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("PLANTBRIDGE_TASK_QUEUE", queue)
    acts = BatchActivities({plant: cfg}, store, tmp_path / "exports")
    runner = CliRunner()
    monkeypatch.setattr(batch_cli, "console", Console(width=400))
    monkeypatch.setattr(cli_module, "console", Console(width=400))
    async with Worker(client, task_queue=queue, workflows=[MasterDataCheckWorkflow], activities=acts.all()):
        report = await sync_schedules(client, {plant: cfg}, queue)
        assert report.created == [f"masterdata-check:{plant}"]
        await client.get_schedule_handle(f"masterdata-check:{plant}").trigger()  # as the Temporal UI's "Trigger"
        result = await asyncio.to_thread(runner.invoke, app, ["batch", "run", "masterdata-check", "--plant", plant,
                                                              "--temporal", temporal_server.address])
        assert result.exit_code == 0, (result.output, result.exception)

        async def scheduled_run_done() -> object:
            st = await collect_batch_status(client, plant=plant)
            return st if st.jobs and st.jobs[0].outcome == "completed" else None

        status = await eventually(scheduled_run_done)
    out = result.output
    lines = {line.strip() for line in out.splitlines()}
    assert "MES checked" in out and "ASSY-01, PAINT-07" in out
    for expected in ("unmapped work_center L1-PACK (mes)", "unmapped work_center L2-MACH (mes)",
                     "stale work_center L9-GONE (mes)", "stale unit BOX (mes)", "unmapped reason H-CUST (mes)",
                     "stale reason D-OLD (mes)", "unmapped work_center PAINT-07 (erp)"):
        assert any(line.startswith(expected) for line in lines), (expected, out)
    assert not any("ASSY-01 (erp)" in line or "unit PCS" in line or "L1-ASSY" in line for line in lines), out
    assert (tmp_path / "exports" / plant).is_dir() and list((tmp_path / "exports" / plant).glob("masterdata_*.json"))

    (job,) = status.jobs
    assert job.schedule == f"masterdata-check:{plant}" and job.last_run and job.next_run and not job.paused
    findings = status.masterdata[plant].findings
    assert {(f.problem, f.kind, f.code, f.system) for f in findings} >= {
        ("unmapped", "work_center", "PAINT-07", "erp"), ("stale", "unit", "BOX", "mes")}

    # `plantbridge status --plant P` shows the job and the findings.
    shown = await asyncio.to_thread(runner.invoke, app, ["status", "--plant", plant, "--temporal",
                                                         temporal_server.address, "--store-url",
                                                         sqlite_url(tmp_path / "pb.db")])
    assert shown.exit_code == 0, (shown.output, shown.exception)
    assert f"masterdata-check:{plant}" in shown.output and "completed" in shown.output
    assert "PAINT-07" in shown.output and "L9-GONE" in shown.output
    await client.get_schedule_handle(f"masterdata-check:{plant}").delete()
