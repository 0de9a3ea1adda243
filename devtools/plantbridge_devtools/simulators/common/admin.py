"""The admin routes every plant-system simulator shares (JSON, no auth, never fault-injected).

=======  ==============  ================================================================
GET      /admin/health   liveness and the system's name
GET      /admin/state    every stored object by kind, with counts (plus the system's extras)
POST     /admin/reset    delete all data and faults
GET      /admin/faults   current fault injection
PUT      /admin/faults   set fault injection (:class:`FaultsIn`)
DELETE   /admin/faults   no faults
=======  ==============  ================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter

from plantbridge_devtools.simulators.common.faults import FaultInjector, FaultsIn
from plantbridge_devtools.simulators.common.state import SqliteState


def build_admin_router(
    *,
    system: str,
    state: SqliteState,
    faults: FaultInjector,
    extra_state: Callable[[], dict[str, Any]] | None = None,
    on_reset: Callable[[], None] | None = None,
) -> APIRouter:
    router = APIRouter(prefix="/admin", tags=["admin"])

    @router.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "system": system}

    @router.get("/state")
    async def get_state() -> dict[str, Any]:
        snapshot = state.snapshot()
        if extra_state is not None:
            snapshot.update(extra_state())
        return snapshot

    @router.post("/reset")
    async def reset() -> dict[str, Any]:
        state.reset()
        faults.clear()
        if on_reset is not None:
            on_reset()
        return {"reset": True}

    @router.get("/faults")
    async def get_faults() -> dict[str, Any]:
        return faults.config.to_json()

    @router.put("/faults")
    async def put_faults(body: FaultsIn) -> dict[str, Any]:
        return faults.configure(body.to_config()).to_json()

    @router.delete("/faults")
    async def clear_faults() -> dict[str, Any]:
        return faults.clear().to_json()

    return router
