"""The MQTT side of the edge configuration: brokers (`plantbridge.mqtt_broker`), how a machine's roles are read.

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

import re
from typing import Literal, TypeVar

from pydantic import Field, field_validator

from plantbridge.mqtt_broker import MqttEndpointConfig, _Strict

ROLES = ("state", "good", "scrap", "stop_reason", "order", "operation", "cycle_time", "operation_done")
_SPB_ID = r"^[^/#+]{1,64}$"  # Sparkplug ids: no topic separators or wildcards
__all__ = ["ROLES", "JsonField", "JsonSource", "MqttEndpointConfig", "SparkplugSource"]
_TOPIC_WILDCARD = re.compile(r"[#+]")


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
