"""`plantbridge chaos --quick`: the demo on a dev stack of its own while Temporal, the worker and the gateway
are SIGKILLed, the OPC UA server is restarted, the edge agents lose the gateway and SAP/Odoo fail one call
in five; it prints lost 0, doubled 0, unkeyed 0 and every order finished (heavy: about two minutes).

And the counts themselves can fail: an event answered 2xx that no saga has seen is lost, a refused one is
not; a posting with an external key twice, or without one, is found in SAP's own data."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from plantbridge_devtools.chaos_check import Answered, answered_2xx, edge_answered_2xx, lost_events
from plantbridge_devtools.erp_audit import audit_sap

pytestmark = pytest.mark.heavy  # minutes, not seconds: `pytest -m 'not heavy'` for a quick loop


def test_chaos_quick_run_loses_doubles_and_unkeys_nothing(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLANTBRIDGE_")}
    env["COLUMNS"] = "120"
    run = subprocess.run([sys.executable, "-m", "plantbridge.workers.cli", "chaos", "--quick", "--out", str(out),
                          "--state-dir", str(tmp_path / "chaos")], capture_output=True, text=True, env=env,
                         timeout=420)
    tail = (run.stdout + run.stderr)[-5000:]
    figures = json.loads(out.read_text()) if out.exists() else {}
    assert run.returncode == 0 and figures.get("ok"), tail
    assert "lost 0, doubled 0, unkeyed 0, unfinished 0" in run.stdout, tail
    assert figures["orders"] >= 8 and figures["finished"] == figures["orders"], figures
    assert figures["events_answered_2xx"] >= 20 and figures["postings"]["confirmation"] >= 8, figures
    assert set(figures["disruptions"]) == {"temporal", "worker", "gateway", "machines", "edge-link"}, figures
    assert {"temporal", "worker", "gateway", "machines"} <= set(figures["restarts"]), figures


def test_the_counts_can_fail(tmp_path: Path) -> None:
    outbox = [
        {"event_id": "e1", "status": "delivered", "http_status": 200, "event": {"plant": "1000", "order": "7"},
         "response": {"status": "accepted"}},
        {"event_id": "e2", "status": "delivered", "http_status": 202, "event": {"plant": "1000", "order": "7"},
         "response": {"status": "accepted"}},
        {"event_id": "e3", "status": "delivered", "http_status": 200, "event": {"plant": "1000", "order": "7"},
         "response": {"status": "rejected"}},
        {"event_id": "e4", "status": "pending", "http_status": 503, "event": {"plant": "1000", "order": "7"}},
    ]
    answers = answered_2xx(outbox)
    assert [a.event_id for a in answers] == ["e1", "e2", "e3"]
    lost = lost_events(answers, {("1000", "7"): {"e1"}})
    assert lost.lost == ["1000/7 e2"] and lost.refused == 1 and lost.answered == 3
    assert lost_events([Answered("e9", "1000", "8", "duplicate")], {}).lost == ["1000/8 e9"]  # no saga at all
    unasked = lost_events([Answered("e9", "1000", "8", "accepted")], {}, frozenset({("1000", "8")}))
    assert unasked.lost == [] and unasked.unverified == ["1000/8 e9"]  # its saga could not be asked
    edge = tmp_path / "edge-1000-outbox.db"  # an edge agent's outbox: its own record of the answers
    with contextlib.closing(sqlite3.connect(edge)) as db:
        db.execute("CREATE TABLE outbox (seq INTEGER PRIMARY KEY, event_id TEXT, payload TEXT, answer TEXT)")
        for seq, code in ((1, 200), (2, 503), (3, None)):
            answer = None if code is None else json.dumps({"http_status": code, "status": "accepted"})
            db.execute("INSERT INTO outbox VALUES (?, ?, ?, ?)",
                       (seq, f"d{seq}", json.dumps({"plant": "1000", "order": "7"}), answer))
        db.commit()
    assert [(a.event_id, a.order) for a in edge_answered_2xx(edge)] == [("d1", "7")]

    key = "c98510e3-aadc-523e-ba5c-09746626a8f8"
    conf = {"ConfirmationGroup": "1", "ConfirmationCount": "1", "OrderID": "1000000", "ExternalSystemConfirmation": key,
            "goods_movements": [{"MaterialDocument": "4900000000"}]}
    state = {"confirmations": [conf, {**conf, "ConfirmationCount": "2", "goods_movements": []},
                               {**conf, "ConfirmationCount": "3", "ExternalSystemConfirmation": None,
                                "goods_movements": []}],
             "material_documents": [
                 {"MaterialDocument": "4900000000", "items": [{"ManufacturingOrder": "1000000"}]},  # the backflush
                 {"MaterialDocument": "4900000001", "items": [{"ManufacturingOrder": "1000000"}]},  # no key at all
                 *[{"MaterialDocument": f"490000000{i}", "ReferenceDocument": "A", "MaterialDocumentHeaderText": "B",
                    "items": [{"ManufacturingOrder": "1000000"}]} for i in (2, 3)]]}
    audit = audit_sap(state)
    assert audit.doubled == [f"SAP confirmation {key} x2", "SAP material document AB x2"]
    assert audit.unkeyed == ["SAP confirmation 1/3", "SAP material document None/4900000001"]
    assert audit_sap(state, {"1000001"}).postings == {}  # another order's postings are not counted
