"""The gateway's OpenAPI contract, tested as a schema-driven client would: Schemathesis (its CLI, in a
separate process, over real HTTP) against the gateway on a free port with the real Temporal server."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from tests.gateway.conftest import Gateway

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
          "response_schema_conformance,negative_data_rejection,ignored_auth,unsupported_method")


async def schemathesis(gateway: Gateway, key: str, out: Path, *extra: str) -> tuple[int, str, dict]:
    st = Path(sys.executable).with_name("st")
    report = out / f"{key}.json"
    proc = await asyncio.create_subprocess_exec(
        str(st), "run", f"{gateway.url}/openapi.json", "--checks", CHECKS, "-H",
        f"Authorization: Bearer {gateway.keys[key]}", "--max-examples", "10", "--seed", "18",
        "--phases", "examples,coverage,fuzzing", "--workers", "2", "--report", "json",
        "--report-json-path", str(report), *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    stdout, _ = await proc.communicate()
    data = json.loads(report.read_text()) if report.exists() else {}
    return proc.returncode or 0, stdout.decode(errors="replace"), data


async def test_schemathesis(gateway: Gateway, tmp_path: Path) -> None:
    for key in ("sup_all", "mes1000", "erp1000"):
        rc, text, _ = await schemathesis(gateway, key, tmp_path)
        print(text)
        assert rc == 0, text
