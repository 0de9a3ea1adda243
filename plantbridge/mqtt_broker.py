"""An MQTT broker connection (URL, TLS files, credentials by env, keepalive, reconnect backoff), shared by
the edge's MQTT sources (``plantbridge.edge.mqtt_config``) and the Unified Namespace out (``plantbridge.uns``).

A leaf module (pydantic only), so that the edge and the gateway can both import it.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class ConfigError(ValueError):
    """A configuration problem; the message names the file, the field and the value."""



class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MqttEndpointConfig(_Strict):
    """One MQTT broker. QoS 1 with a persistent session (``clean_session`` off, a stable client id):
    what was published while the agent or its connection was away is delivered when it is back."""

    url: str = Field(description="mqtt://host[:1883] or mqtts://host[:8883]")
    client_id: str | None = Field(default=None, max_length=128, description="default plantbridge-<source>-<name>")
    ca_cert: Path | None = Field(default=None, description="PEM CA bundle for mqtts:// (else the system's)")
    client_cert: Path | None = Field(default=None, description="PEM client certificate (mutual TLS)")
    client_key: Path | None = None
    username_env: str | None = None
    password_env: str | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    reconnect_initial_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)

    @field_validator("url")
    @classmethod
    def _mqtt_url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("mqtt", "mqtts") or not parsed.hostname:
            raise ValueError("must be mqtt://host[:port] or mqtts://host[:port]")
        if parsed.path not in ("", "/"):
            raise ValueError("a broker URL has no path")
        return value

    @model_validator(mode="after")
    def _pairs(self) -> MqttEndpointConfig:
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("give both client_cert and client_key, or neither")
        if (self.username_env is None) != (self.password_env is None):
            raise ValueError("give both username_env and password_env, or neither")
        if not self.tls and (self.ca_cert or self.client_cert):
            raise ValueError("ca_cert/client_cert need an mqtts:// url")
        return self

    @property
    def tls(self) -> bool:
        return self.url.startswith("mqtts://")

    @property
    def host(self) -> str:
        return urlparse(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urlparse(self.url).port or (8883 if self.tls else 1883)

    def credentials(self) -> tuple[str, str] | None:
        if self.username_env is None or self.password_env is None:
            return None
        user, password = os.environ.get(self.username_env), os.environ.get(self.password_env)
        if user is None or password is None:
            missing = self.username_env if user is None else self.password_env
            raise ConfigError(f"endpoint {self.url}: environment variable {missing} is not set")
        return user, password
