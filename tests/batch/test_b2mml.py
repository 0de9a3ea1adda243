"""Every exported B2MML document validates against MESA's XSDs; an invalid one never leaves."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from plantbridge.batch.b2mml import InvalidB2MML, schema, shift_performance, validate
from plantbridge.batch.export import ExportFailed, post_http, shift_documents, write_directory
from plantbridge.batch.summary import summarize
from plantbridge.canonical.batch_config import DirectoryExport, HttpExport
from tests.batch.test_shift_summary import CONFIRMATIONS, DOWNTIMES, EARLY

SHARED = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "b2mml" / "V0600"


def summary():  # type: ignore[no-untyped-def]
    return summarize(plant="1000", timezone="Europe/Berlin", window=EARLY,
                     ideal_cycle_times={"ASSY-01": Decimal(30), "TEST-01": None},
                     confirmations=CONFIRMATIONS, downtimes=DOWNTIMES)


def test_shift_document_validates_and_is_deterministic() -> None:
    doc = shift_performance(summary())
    validate(doc)
    assert doc == shift_performance(summary())
    assert b"<MaterialUse>Produced</MaterialUse>" in doc and b"<ID>OEE-ASSY-01</ID>" in doc


def test_empty_shift_validates() -> None:
    empty = summarize(plant="1000", timezone="Europe/Berlin", window=EARLY, ideal_cycle_times={},
                      confirmations=[], downtimes=[])
    validate(shift_performance(empty))


def test_invalid_document_fails_loudly() -> None:
    doc = shift_performance(summary()).replace(b"<EquipmentElementLevel>Site<", b"<EquipmentElementLevel>Galaxy<")
    with pytest.raises(InvalidB2MML, match="invalid against"):
        validate(doc)


@pytest.mark.skipif(not SHARED.is_dir(), reason="MESA's originals are not beside this checkout (../shared)")
def test_shipped_xsds_are_mesas_byte_for_byte() -> None:
    shipped = Path(schema().url or "").parent if schema().url else None
    assert shipped is not None
    for xsd in shipped.glob("*.xsd"):
        assert xsd.read_bytes() == (SHARED / xsd.name).read_bytes(), xsd.name


def test_directory_export_is_idempotent(tmp_path: Path) -> None:
    docs = shift_documents(summary())
    target = DirectoryExport(path=str(tmp_path / "out"))
    first = write_directory(target, docs)
    assert [w.new for w in first] == [True, True]
    assert [w.new for w in write_directory(target, docs)] == [False, False]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(d.name for d in docs)
    for d in docs:
        if d.name.endswith(".xml"):
            validate((tmp_path / "out" / d.name).read_bytes())


async def test_http_export_retries_with_idempotency_key() -> None:
    seen: list[tuple[str, str]] = []
    stored: dict[str, bytes] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, request.headers["Idempotency-Key"]))
        if len(seen) == 1:
            return httpx.Response(503)
        if request.url.path in stored:
            return httpx.Response(409)
        stored[request.url.path] = request.content
        return httpx.Response(201)

    docs = shift_documents(summary())
    target = HttpExport(url="http://exports.test/b2mml", retries=3)
    out = await post_http(target, docs, transport=httpx.MockTransport(handler), backoff_s=0.01)
    assert [w.new for w in out] == [True, True]
    assert seen[0] == seen[1] and seen[0][1] == f"{summary().content_hash}:xml"
    again = await post_http(target, docs, transport=httpx.MockTransport(handler), backoff_s=0.01)
    assert [w.new for w in again] == [False, False]
    refusing = httpx.MockTransport(lambda r: httpx.Response(400, text="no"))
    with pytest.raises(ExportFailed, match="refused"):
        await post_http(target, docs, transport=refusing)
