"""Gateway settings: the worker's settings plus host, port, ack wait, body limit, the UNS out (env `PLANTBRIDGE_*`)."""

from __future__ import annotations

from typing import cast

from pydantic import Field

from plantbridge.uns import DEFAULT_ORDER_TOPIC, UnsConfig
from plantbridge.workers.settings import Settings


class GatewaySettings(Settings):
    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(default=8080, ge=1, le=65535)
    ack_wait_s: float = Field(default=2.0, gt=0, le=60)
    body_limit: int = Field(default=1024 * 1024, ge=1024)
    # The LOIPRO IDoc route's own limit (an order of 3,000 components is ~3.5 MB of IDoc XML).
    idoc_body_limit: int = Field(default=8 * 1024 * 1024, ge=1024)
    # How long a gateway holds an inbox row it drives; a row left `received` by a dead gateway is
    # re-driven by another (or its restart) once this ran out.
    inbox_lease_s: float = Field(default=60.0, ge=1, le=3600)
    # How far in the future a plant event may be stamped (the plant's clock ahead of ours).
    max_clock_skew_s: float = Field(default=300.0, ge=0)
    # Per role `role=rate/burst,...` over the defaults (plantbridge/gateway/ratelimit.py), e.g. `edge=100/400`.
    rate_limits: str = ""
    max_orders_per_idoc: int = Field(default=200, ge=1)
    # HTTPS (gateway/tls.py): server certificate and key; a CA to verify client certificates (edge
    # agents), required at the handshake or not.
    gateway_tls_cert: str | None = None
    gateway_tls_key: str | None = None
    gateway_tls_client_ca: str | None = None
    gateway_tls_client_required: bool = False
    # The Unified Namespace out (plantbridge.uns): order state changes, retained, QoS 1. No URL: off.
    uns_url: str | None = None
    uns_enterprise: str = "plantbridge"
    uns_site: str = "{plant}"
    uns_order_topic: str = DEFAULT_ORDER_TOPIC
    uns_ca_cert: str | None = None
    uns_username_env: str | None = None
    uns_password_env: str | None = None

    def uns(self) -> UnsConfig | None:
        if not self.uns_url:
            return None
        return UnsConfig.model_validate({
            "url": self.uns_url, "enterprise": self.uns_enterprise, "site": self.uns_site,
            "order_topic": self.uns_order_topic, "ca_cert": self.uns_ca_cert,
            "username_env": self.uns_username_env, "password_env": self.uns_password_env,
        })

    @classmethod
    def from_env(cls, **overrides: object) -> GatewaySettings:
        return cast(GatewaySettings, super().from_env(**overrides))
