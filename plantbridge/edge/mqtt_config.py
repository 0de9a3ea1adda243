"""The MQTT side of the edge configuration: brokers, how a machine's roles are read from topics, the UNS out.

An endpoint whose ``url`` starts with ``mqtt://`` or ``mqtts://`` is a broker. A machine on a broker
says in its ``mqtt`` block how each role (``state``, ``good``, ``scrap``, ``stop_reason``, ``order``,
``operation``, ``cycle_time``, ``operation_done``; telemetry by name) is read:

* ``format: json`` — ``fields.<role>: {topic, path}``: the JSON payload of ``topic`` (``{id}``
  substituted), the value at the dotted ``path`` (``""``: the whole payload); ``timestamp`` names the
  payload field holding the source time (ISO 8601 or epoch milliseconds), else the arrival time counts.
* ``format: sparkplug`` — ``group``/``edge_node``/``device`` (Sparkplug B ids; no ``device``: the edge
  node's own metrics) and ``metrics.<role>: <metric name>``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ROLES = ("state", "good", "scrap", "stop_reason", "order", "operation", "cycle_time", "operation_done")
_SPB_ID = r"^[^/#+]{1,64}$"  # Sparkplug ids: no topic separators or wildcards
_TOPIC_WILDCARD = re.compile(r"[#+]")


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
            from plantbridge.edge.config import ConfigError

            missing = self.username_env if user is None else self.password_env
            raise ConfigError(f"endpoint {self.url}: environment variable {missing} is not set")
        return user, password


class JsonField(_Strict):
    topic: str = Field(min_length=1, description="exact topic ({id} = the machine id); no wildcards")
    path: str = Field(default="", description="dotted path into the JSON payload; '' = the whole payload")

    @field_validator("topic")
    @classmethod
    def _no_wildcards(cls, value: str) -> str:
        if _TOPIC_WILDCARD.search(value):
            raise ValueError("a role's topic is exact: no + or # wildcards")
        return value


class JsonSource(_Strict):
    format: Literal["json"]
    fields: dict[str, JsonField] = Field(description="role -> topic and path")
    telemetry: dict[str, JsonField] = Field(default_factory=dict)
    timestamp: str | None = Field(default=None, description="payload path of the source time (ISO or epoch ms)")

    @field_validator("fields")
    @classmethod
    def _roles(cls, value: dict[str, JsonField]) -> dict[str, JsonField]:
        return _check_roles(value)


class SparkplugSource(_Strict):
    format: Literal["sparkplug"]
    group: str = Field(pattern=_SPB_ID)
    edge_node: str = Field(pattern=_SPB_ID)
    device: str | None = Field(default=None, pattern=_SPB_ID, description="omit: the edge node's own metrics")
    metrics: dict[str, str] = Field(description="role -> Sparkplug metric name")
    telemetry: dict[str, str] = Field(default_factory=dict, description="name -> metric name")

    @field_validator("metrics")
    @classmethod
    def _roles(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_roles(value)


_V = TypeVar("_V")


def _check_roles(value: dict[str, _V]) -> dict[str, _V]:
    unknown = sorted(set(value) - set(ROLES))
    if unknown:
        raise ValueError(f"unknown role(s) {', '.join(unknown)} (roles: {', '.join(ROLES)})")
    if "state" not in value:
        raise ValueError("the state role is required")
    return value
