"""Onboarding: `plantbridge plant new PLANT --from TEMPLATE` and `plantbridge plant check PLANT` against the
SAP, MES, QMS and WMS simulators (each in its own thread on a free port, real HTTP), through the CLI
(typer's CliRunner, in a thread so the simulators keep serving)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from plantbridge.onboarding.plant_check import TEMPLATES
from plantbridge.workers.cli import app
from plantbridge.workers.plants import load_plant
from plantbridge_devtools.simulators.mes.codes import DEFAULT_RESOURCES, DOWNTIME_CODES, HOLD_CODES, SCRAP_CODES
from plantbridge_devtools.simulators.mes.server import MesServer
from plantbridge_devtools.simulators.qms.server import QmsServer
from plantbridge_devtools.simulators.sap.server import SimulatorServer
from plantbridge_devtools.simulators.wms.server import WmsServer

runner = CliRunner()
PLANT = "3100"
ENV = {"PLANTBRIDGE_SAP_3100_PASSWORD": "secret", "PLANTBRIDGE_MES_3100_KEY": "mes-dev-key",
       "PLANTBRIDGE_QMS_3100_KEY": "qms-dev-key", "PLANTBRIDGE_WMS_3100_KEY": "wms-dev-key"}


@pytest.fixture(scope="module")
def systems(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("sims")
    with SimulatorServer(str(root / "sap.db")) as sap, MesServer(str(root / "mes.db")) as mes, \
            QmsServer(str(root / "qms.db")) as qms, WmsServer(str(root / "wms.db")) as wms:
        yield {"sap": sap.url, "mes": mes.url, "qms": qms.url, "wms": wms.url}


def cli(*args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, list(args), env=env)


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_gives_a_valid_plant_file(template: str, tmp_path: Path) -> None:
    r = cli("plant", "new", PLANT, "--from", template, "--plants-dir", str(tmp_path), "--name", "Site: Linz")
    assert r.exit_code == 0, r.output
    cfg = load_plant(tmp_path / f"{PLANT}.yaml")
    assert cfg.plant == PLANT and cfg.name == "Site: Linz" and cfg.erp.kind == template
    again = cli("plant", "new", PLANT, "--from", template, "--plants-dir", str(tmp_path))
    assert again.exit_code == 2 and "exists already" in again.output
    assert cli("plant", "new", PLANT, "--from", "sap", "--plants-dir", str(tmp_path / "x")).exit_code == 2


def _fill_in(path: Path, urls: dict[str, str], **changes: Any) -> None:
    """What the site engineer does after `plant new`: the systems' addresses and the MES's codes mapped."""
    data = yaml.safe_load(path.read_text())
    data["erp"]["url"] = urls["sap"]
    for system in ("mes", "qms", "wms"):
        data[system]["url"] = urls[system]
    data["work_centers"] = [{"code": f"WC{i}"} for i, _ in enumerate(DEFAULT_RESOURCES)]
    data["xref"]["work_centers"] = {r: f"WC{i}" for i, r in enumerate(DEFAULT_RESOURCES)}
    data["xref"]["units"] = {"PCS": "H87", "SET": "SET", "KG": "KGM", "G": "GRM", "M": "MTR", "L": "LTR"}
    data["xref"]["reasons"] = {c: f"R{i:03d}" for i, c in enumerate([*SCRAP_CODES, *DOWNTIME_CODES, *HOLD_CODES])}
    for key, value in changes.items():
        section, _, field = key.partition("__")
        data[section][field] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _lines(output: str) -> dict[str, str]:
    return {parts[1]: parts[0] for line in output.splitlines() if len(parts := line.split()) > 1
            and parts[0] in ("OK", "WARN", "FAIL", "SKIP")}


async def test_check_against_the_live_systems(systems: dict[str, str], tmp_path: Path) -> None:
    assert cli("plant", "new", PLANT, "--from", "sap_odata", "--plants-dir", str(tmp_path)).exit_code == 0
    path = tmp_path / f"{PLANT}.yaml"

    # Straight from the template: placeholders, no secrets -> not ready, each problem named.
    fresh = await asyncio.to_thread(cli, "plant", "check", PLANT, "--plants-dir", str(tmp_path), env={})
    assert fresh.exit_code == 1, fresh.output
    assert _lines(fresh.output)["file"] == "OK" and _lines(fresh.output)["secrets"] == "FAIL"
    assert "PLANTBRIDGE_SAP_3100_PASSWORD" in fresh.output and "NOT READY" in fresh.output

    _fill_in(path, systems)
    ok = await asyncio.to_thread(cli, "plant", "check", PLANT, "--plants-dir", str(tmp_path), env=ENV)
    assert ok.exit_code == 0, ok.output
    assert _lines(ok.output) == {"file": "OK", "secrets": "OK", "erp": "OK", "mes": "OK", "qms": "OK", "wms": "OK",
                                 "xref": "OK"}, ok.output
    assert "ready" in ok.output

    # A wrong SAP password and a wrong WMS key: credentials refused, named.
    bad = await asyncio.to_thread(cli, "plant", "check", PLANT, "--plants-dir", str(tmp_path),
                                  env={**ENV, "PLANTBRIDGE_SAP_3100_PASSWORD": "wrong",
                                       "PLANTBRIDGE_WMS_3100_KEY": "nope"})
    assert bad.exit_code == 1
    lines = _lines(bad.output)
    assert lines["erp"] == "FAIL" and lines["wms"] == "FAIL" and lines["mes"] == "OK", bad.output
    assert "refused user PLANTBRIDGE" in bad.output and "PLANTBRIDGE_WMS_3100_KEY" in bad.output

    # The MES knows codes the file does not map (unmapped: FAIL), and the file maps one it does not know
    # (stale: WARN).
    data = yaml.safe_load(path.read_text())
    del data["xref"]["units"]["KG"]
    data["xref"]["reasons"]["D-GONE"] = "R999"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    codes = await asyncio.to_thread(cli, "plant", "check", PLANT, "--plants-dir", str(tmp_path), env=ENV)
    assert codes.exit_code == 1
    assert "FAIL xref.unit" in " ".join(codes.output.split()) and "MES unit KG" in codes.output
    assert "WARN xref.reason" in " ".join(codes.output.split()) and "D-GONE" in codes.output

    # The MES is down: unreachable, and the cross-references are not compared.
    _fill_in(path, {**systems, "mes": "http://127.0.0.1:9"})
    down = await asyncio.to_thread(cli, "plant", "check", PLANT, "--plants-dir", str(tmp_path), env=ENV)
    assert down.exit_code == 1 and _lines(down.output)["mes"] == "FAIL" and _lines(down.output)["xref"] == "SKIP"

    # An invalid file: the loader's message, nothing else tried.
    path.write_text(path.read_text().replace("kind: sap_odata", "kind: sap_cloud"))
    broken = await asyncio.to_thread(cli, "plant", "check", PLANT, "--plants-dir", str(tmp_path), env=ENV)
    assert broken.exit_code == 1 and _lines(broken.output) == {"file": "FAIL"} and "erp.kind" in broken.output
