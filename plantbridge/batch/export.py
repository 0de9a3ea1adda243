"""Export targets: where a batch job's documents go (a directory, or an HTTP endpoint).

Each document is named by its content hash, so writing it again is a no-op: a directory target
finds the file already there (same name, same bytes); an HTTP target sends the hash as the
`Idempotency-Key` header and the receiver drops a repeat. Directory writes are atomic (temporary
file, then rename), so a reader never sees half a document.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from plantbridge.batch.b2mml import shift_performance
from plantbridge.batch.summary import Oee, ShiftSummary
from plantbridge.canonical.batch_config import DirectoryExport, HttpExport


@dataclass(frozen=True)
class Document:
    name: str
    content: bytes
    media_type: str
    key: str  # idempotency key: the content hash of what the document says


def _ratios(o: Oee) -> dict[str, Any]:
    return {k: (str(getattr(o, k)) if getattr(o, k) is not None else None)
            for k in ("availability", "performance", "quality", "oee")}


def shift_documents(summary: ShiftSummary) -> list[Document]:
    """The B2MML ProductionPerformance document (validated) and its JSON companion with the OEE figures."""
    digest = summary.content_hash
    # A running shift's figures so far are named apart, so no reader takes them for the shift's final document.
    shift = f"{summary.shift}-so-far" if summary.in_progress else summary.shift
    stem = f"shift-summary_{summary.plant}_{summary.plant_day}_{shift}_{digest[:16]}"
    xml = shift_performance(summary)
    companion = {
        "kind": "shift-summary",
        "b2mml": {"document": f"{stem}.xml", "schema": "B2MML-V0600 ProductionPerformance"},
        "content_hash": digest,
        "plant": summary.plant,
        "plant_day": summary.plant_day,
        "shift": summary.shift,
        "in_progress": summary.in_progress,
        "oee": {"plant": _ratios(summary.oee),
                "work_centers": {wc.work_center: _ratios(wc.oee) for wc in summary.work_centers}},
        "summary": summary.model_dump(mode="json"),
    }
    body = json.dumps(companion, sort_keys=True, indent=2).encode() + b"\n"
    return [Document(f"{stem}.xml", xml, "application/xml", f"{digest}:xml"),
            Document(f"{stem}.json", body, "application/json", f"{digest}:json")]


@dataclass(frozen=True)
class Written:
    location: str
    new: bool


def write_directory(target: DirectoryExport, docs: list[Document]) -> list[Written]:
    root = Path(target.path)
    root.mkdir(parents=True, exist_ok=True)
    out: list[Written] = []
    for doc in docs:
        path = root / doc.name
        if path.exists() and path.read_bytes() == doc.content:
            out.append(Written(str(path), new=False))
            continue
        tmp = path.with_name(f".{doc.name}.{os.getpid()}.tmp")
        tmp.write_bytes(doc.content)
        os.replace(tmp, path)
        out.append(Written(str(path), new=True))
    return out


class ExportFailed(RuntimeError):
    """The target refused a document (4xx other than 409) or stayed unreachable through the retries."""


async def post_http(target: HttpExport, docs: list[Document], *, transport: httpx.AsyncBaseTransport | None = None,
                    backoff_s: float = 0.5) -> list[Written]:
    headers = {}
    if target.api_key_env:
        headers["Authorization"] = f"Bearer {os.environ.get(target.api_key_env, '')}"
    out: list[Written] = []
    async with httpx.AsyncClient(timeout=target.timeout_s, transport=transport, headers=headers) as client:
        for doc in docs:
            url = f"{target.url.rstrip('/')}/{doc.name}"
            for attempt in range(target.retries + 1):
                try:
                    resp = await client.put(url, content=doc.content,
                                            headers={"Content-Type": doc.media_type, "Idempotency-Key": doc.key})
                except httpx.TransportError as err:
                    if attempt == target.retries:
                        raise ExportFailed(f"{url}: unreachable after {attempt + 1} attempts: {err}") from err
                else:
                    if resp.status_code < 300 or resp.status_code == 409:  # 409: it has this document
                        out.append(Written(url, new=resp.status_code < 300))
                        break
                    if resp.status_code < 500 and resp.status_code != 429:
                        raise ExportFailed(f"{url}: refused with HTTP {resp.status_code}: {resp.text[:300]}")
                    if attempt == target.retries:
                        raise ExportFailed(f"{url}: HTTP {resp.status_code} after {attempt + 1} attempts")
                await asyncio.sleep(backoff_s * 2**attempt)
    return out


async def export(target: DirectoryExport | HttpExport, docs: list[Document], **kw: Any) -> list[Written]:
    if isinstance(target, DirectoryExport):
        return await asyncio.to_thread(write_directory, target, docs)
    return await post_http(target, docs, **kw)
