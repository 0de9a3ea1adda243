"""Gateway settings: the worker's settings plus host, port, ack wait, body limit (env `PLANTBRIDGE_*`)."""

from __future__ import annotations

from typing import cast

from pydantic import Field

from plantbridge.workers.settings import Settings


class GatewaySettings(Settings):
    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(default=8080, ge=1, le=65535)
    ack_wait_s: float = Field(default=2.0, gt=0, le=60)
    body_limit: int = Field(default=1024 * 1024, ge=1024)

    @classmethod
    def from_env(cls, **overrides: object) -> GatewaySettings:
        return cast(GatewaySettings, super().from_env(**overrides))
