"""Plant files: valid ones load; broken ones fail at start naming the file, the field and the value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from plantbridge.workers.plants import PlantConfigError, load_plant, load_plants

ROOT = Path(__file__).resolve().parents[1]

GOOD = """
plant: "2000"
erp: {kind: sap_odata, url: "http://127.0.0.1:8101", user: PLANTBRIDGE, password_env: SAP_PW}
work_centers: [{code: PRESS-1}, {code: PAINT-1}]
xref:
  work_centers: {P1: PRESS-1, LACK: PAINT-1}
  units: {STK: H87, kg: KGM}
policy: {hold_sla: PT1H, posting_sla: PT10M}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_example_plant_file_loads_and_translates() -> None:
    plants = load_plants(ROOT / "plants")
    cfg = plants["1000"]
    raw = {"work_center": "L1-ASSY", "reason": "S-SCRATCH", "yield_qty": {"quantity": "3", "uom": "PCS"}}
    assert cfg.translate_event(raw) == {"work_center": "ASSY-01", "reason": "SCR-01",
                                        "yield_qty": {"quantity": "3", "uom": "H87"}}


def test_good_file(tmp_path: Path) -> None:
    cfg = load_plant(write(tmp_path, "2000.yaml", GOOD))
    assert cfg.xref.units == {"STK": "H87", "kg": "KGM"} and cfg.policy.hold_sla.total_seconds() == 3600


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("P1: PRESS-1", "P1: PRESS-9"), ["xref.work_centers", "'PRESS-9'", "not a work center of plant 2000"]),
        (("STK: H87", "STK: BOGUS"), ["xref.units", "'BOGUS'", "not a UN/ECE"]),
        (('url: "http://127.0.0.1:8101", ', ""), ["erp", "needs `url`"]),
        (("hold_sla: PT1H", "hold_sla: soon"), ["policy.hold_sla", "'soon'"]),
    ],
)
def test_broken_files_name_file_field_value(tmp_path: Path, change: tuple[str, str], expected: list[str]) -> None:
    path = write(tmp_path, "2000.yaml", GOOD.replace(*change))
    with pytest.raises(PlantConfigError) as info:
        load_plant(path)
    message = str(info.value)
    assert str(path) in message
    for part in expected:
        assert part in message, message


def test_worker_refuses_to_start_with_a_broken_plant(tmp_path: Path) -> None:
    write(tmp_path, "2000.yaml", GOOD.replace("STK: H87", "STK: BOGUS"))
    env = {**os.environ, "PLANTBRIDGE_PLANTS_DIR": str(tmp_path), "PLANTBRIDGE_TEMPORAL_ADDRESS": "127.0.0.1:1",
           "PLANTBRIDGE_STORE_URL": f"sqlite+aiosqlite:///{tmp_path / 's.db'}",
           "PLANTBRIDGE_REFERENCE_URL": f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"}
    result = subprocess.run([sys.executable, "-m", "plantbridge.workers.cli", "worker"], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert "2000.yaml: xref.units" in result.stderr and "BOGUS" in result.stderr


def test_dev_plant_files_load_beside_the_edge_file() -> None:
    from plantbridge_devtools.stack import PLANTS_DIR

    plants = load_plants(PLANTS_DIR)
    assert set(plants) == {"1000", "2000", "3000"}
    assert plants["1000"].erp.kind == "sap_odata" and plants["2000"].mes.kind == "rest"
    assert plants["1000"].xref.work_centers != plants["2000"].xref.work_centers


def test_idoc_plant_codes_map_to_their_plant(tmp_path: Path) -> None:
    """`erp.idoc_plants` names the WERKS an IDoc carries for this plant (the real LOIPRO05 says HZ001);
    the gateway maps it, and a code claimed by two plants is refused."""
    from plantbridge.gateway.idoc_loipro import parse_loipro
    from plantbridge.gateway.server import idoc_plant_map

    sap = 'erp: {kind: sap_odata, url: "http://127.0.0.1:8101", user: PB, password_env: SAP_PW, idoc_plants: [HZ001]}'
    write(tmp_path, "HZ01.yaml", f'plant: "HZ01"\n{sap}\n')
    mapping = idoc_plant_map(load_plants(tmp_path))
    assert mapping == {"HZ001": "HZ01"}
    [order] = parse_loipro((ROOT / "tests" / "fixtures" / "idoc" / "LOIPRO05_Original.xml").read_bytes(), mapping)
    assert order.plant == "HZ01"
    write(tmp_path, "HZ02.yaml", f'plant: "HZ02"\n{sap}\n')
    with pytest.raises(ValueError, match=r"HZ001.*HZ01 and HZ02"):
        idoc_plant_map(load_plants(tmp_path))
