"""Issue 15 item 8: API keys expire, show when they were last used, rotate with a grace period, and
every change is audited with who made it. Against the gateway served over real HTTP (tests/gateway
fixtures) and the `plantbridge keys` CLI."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from plantbridge.store import Database
from plantbridge.store.api_keys import ApiKeys
from plantbridge.store.audit import AuditTrail
from tests.gateway.conftest import Gateway

ORDERS = "/v1/orders?plant=1000"


async def test_expired_key_is_refused_401(gateway: Gateway, db: Database) -> None:
    keys = ApiKeys(db, cache_seconds=0)
    suffix = uuid.uuid4().hex[:6]
    _, soon = await keys.create(f"sup-soon-{suffix}", "supervisor", ["1000"],
                                expires_at=datetime.now(UTC) + timedelta(seconds=2), actor="test:alice")
    _, past = await keys.create(f"sup-past-{suffix}", "supervisor", ["1000"],
                                expires_at=datetime.now(UTC) - timedelta(seconds=1))
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        r = await http.get(ORDERS, headers={"Authorization": f"Bearer {past}"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_key", r.text
        assert f"sup-past-{suffix}" not in r.text  # the error names no key
        assert (await keys.authenticate(soon)) is not None
        await asyncio.sleep(2.2)
        assert (await keys.authenticate(soon)) is None  # expired while in use


async def test_last_used_is_written_at_most_once_a_minute(db: Database) -> None:
    keys = ApiKeys(db, cache_seconds=0)
    info, key = await keys.create(f"mes-used-{uuid.uuid4().hex[:6]}", "plant-system", ["1000"])
    assert info.last_used_at is None
    first = await keys.authenticate(key)
    assert first is not None
    [stored] = [k for k in await keys.all_keys() if k.key_id == info.key_id]
    assert stored.last_used_at is not None
    await keys.authenticate(key)
    [again] = [k for k in await keys.all_keys() if k.key_id == info.key_id]
    assert again.last_used_at == stored.last_used_at  # within the minute: not written again


async def test_rotation_keeps_the_old_secret_for_the_grace_period_and_is_audited(db: Database) -> None:
    keys = ApiKeys(db, cache_seconds=0)
    name = f"qms-rot-{uuid.uuid4().hex[:6]}"
    info, old = await keys.create(name, "plant-system", ["1000"], kind="qms", actor="test:alice")
    rotated = await keys.rotate(name, grace=timedelta(seconds=1.5), actor="test:bob")
    assert rotated is not None
    new_info, new = rotated
    assert new != old and new_info.key_id == info.key_id and new_info.kind == "qms"
    assert (await keys.authenticate(new)) is not None
    assert (await keys.authenticate(old)) is not None  # grace: the QMS switches without downtime
    await asyncio.sleep(1.7)
    assert (await keys.authenticate(old)) is None
    assert (await keys.authenticate(new)) is not None
    assert await keys.revoke(name, actor="test:carol")
    assert (await keys.authenticate(new)) is None
    trail = await AuditTrail(db).records(workflow_id=f"api-key:{info.key_id}")
    assert [(r.action, r.actor) for r in trail] == [
        ("api_key_created", "test:alice"), ("api_key_rotated", "test:bob"), ("api_key_revoked", "test:carol")]
    assert all(old not in str(r.detail) and new not in str(r.detail) for r in trail)  # no secret in the audit


async def test_cli_rotate_prints_a_new_key_and_audits_the_os_user(db: Database) -> None:
    name = f"wms-cli-{uuid.uuid4().hex[:6]}"

    async def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "plantbridge.workers.cli", "keys", *args, "--store-url", db.url],
            capture_output=True, text=True, timeout=60)

    created = await cli("create", "--name", name, "--role", "plant-system", "--kind", "wms", "--plants", "1000",
                        "--expires-in-days", "30")
    assert created.returncode == 0, created.stderr
    rotated = await cli("rotate", name, "--grace-hours", "1")
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.strip().startswith("pbk_") and rotated.stdout.strip() != created.stdout.strip()
    assert (await cli("rotate", "no-such-key")).returncode == 1
    [info] = [k for k in await ApiKeys(db).all_keys() if k.name == name]
    assert info.expires_at is not None and info.expires_at > datetime.now(UTC) + timedelta(days=29)
    trail = await AuditTrail(db).records(workflow_id=f"api-key:{info.key_id}")
    assert [r.action for r in trail] == ["api_key_created", "api_key_rotated"]
    assert all(r.actor.startswith("cli") for r in trail)
