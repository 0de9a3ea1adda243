"""The edge agent's configuration: one YAML file per plant, validated with pydantic.

Errors name the file, the field (as a dotted path) and the offending value, e.g.
``edge.yaml: machines.0.state_source = 'opcda': Input should be 'machinery' or 'packml'``.

Node references (``nodes.*``, ``telemetry.*``) are either NodeId strings (``ns=6;s=M01.GoodCount``,
``nsu=urn:plantbridge:machine-simulator;s=M01.GoodCount`` — the namespace resolved by URI at every
connect) or browse paths from ``Objects`` (``/4:Machines/6:M01/6:GoodCount``, where a prefix may be
a namespace index, a key of ``namespaces`` or omitted for namespace 0). ``{id}`` is replaced by the
machine id, so ``machine_defaults`` can describe a whole fleet.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from plantbridge.edge.mqtt_config import JsonSource, MqttEndpointConfig, SparkplugSource
from plantbridge.edge.telemetry_upload import TelemetryUploadConfig
from plantbridge.mqtt_broker import ConfigError as ConfigError  # one error type for every edge file
from plantbridge.uns import UnsConfig

UINT32_MAX = 2**32 - 1

NODE_ROLES = ("state", "good", "scrap", "stop_reason", "order", "operation", "cycle_time", "operation_done")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GatewayConfig(_Strict):
    url: str = Field(description="base URL of the plantbridge gateway, e.g. http://127.0.0.1:8080")
    api_key_env: str = Field(default="PLANTBRIDGE_EDGE_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    batch_size: int = Field(default=100, ge=1, le=1000)
    timeout_s: float = Field(default=10.0, gt=0)
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
    retention_s: float = Field(default=7 * 86400.0, ge=0, description="how long answered events stay in the outbox")
    max_refusals: int = Field(default=5, ge=1, le=1000,
                              description="per-event 4xx refusals after which an event goes to the outbox's dead state")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    def api_key(self) -> str:
        key = os.environ.get(self.api_key_env, "")
        if not key:
            raise ConfigError(f"gateway.api_key_env: environment variable {self.api_key_env} is not set or empty")
        return key


SECURITY_MOVED = ("client_cert", "client_key", "server_cert", "application_uri")


class EndpointConfig(_Strict):
    """One OPC UA server. Secure by default: Basic256Sha256 SignAndEncrypt, the server's certificate
    checked against the trust list of ``opcua.pki_dir`` (see :mod:`plantbridge.edge.pki`)."""

    url: str
    security: Literal["none", "basic256sha256"] = "basic256sha256"
    mode: Literal["sign", "sign_and_encrypt"] = "sign_and_encrypt"
    allow_insecure: bool = Field(
        default=False, description="required with security none: machine data in clear, the server not authenticated"
    )
    username_env: str | None = None
    password_env: str | None = None
    publishing_interval_ms: float = Field(default=200.0, gt=0, le=60000)
    timeout_s: float = Field(default=10.0, gt=0)
    reconnect_initial_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)
    watchdog_s: float = Field(default=1.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _moved_fields(cls, data: Any) -> Any:
        if isinstance(data, dict) and (moved := [f for f in SECURITY_MOVED if f in data]):
            raise ValueError(
                f"{', '.join(moved)}: the agent's certificate and application URI are set once, under the top-level "
                "`opcua:` block (application_uri, pki_dir, client_cert, client_key); server certificates are "
                "trusted through the PKI's trusted/certs folder instead of server_cert"
            )
        return data

    @field_validator("url")
    @classmethod
    def _opc_url(cls, value: str) -> str:
        if not value.startswith("opc.tcp://"):
            raise ValueError("must start with opc.tcp://")
        return value

    @model_validator(mode="after")
    def _security(self) -> EndpointConfig:
        if (self.username_env is None) != (self.password_env is None):
            raise ValueError("give both username_env and password_env, or neither")
        if self.security == "none":
            if self.password_env is not None:
                raise ValueError(
                    "a password over security none travels in clear and goes to any server that answers: refused; "
                    "use security basic256sha256 (the default) with the server's certificate in the trust list"
                )
            if not self.allow_insecure:
                raise ValueError(
                    "security none sends machine data in clear and authenticates no server; use basic256sha256 "
                    "(the default), or acknowledge with allow_insecure: true (a warning is logged at start)"
                )
        return self

    @property
    def secure(self) -> bool:
        return self.security != "none"

    def credentials(self) -> tuple[str, str] | None:
        if self.username_env is None or self.password_env is None:
            return None
        user = os.environ.get(self.username_env)
        password = os.environ.get(self.password_env)
        if user is None or password is None:
            missing = self.username_env if user is None else self.password_env
            raise ConfigError(f"endpoint {self.url}: environment variable {missing} is not set")
        return user, password


class OpcUaClientConfig(_Strict):
    """The agent as an OPC UA application: one application URI and instance certificate for all endpoints."""

    application_uri: str | None = Field(
        default=None, description="the URI in the certificate's SubjectAltName; default urn:plantbridge:edge:<source>"
    )
    pki_dir: Path = Field(default=Path("pki"), description="own/, trusted/, rejected/ (relative to the file)")
    client_cert: Path | None = Field(default=None, description="default <pki_dir>/own/certs/plantbridge-edge.der")
    client_key: Path | None = Field(default=None, description="default <pki_dir>/own/private/plantbridge-edge.pem")

    @field_validator("application_uri")
    @classmethod
    def _uri(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$", value):
            raise ValueError("must be a URI, e.g. urn:acme:plant1000:edge")
        return value


class MachineNodes(_Strict):
    state: str = Field(description="MachineryItemState CurrentState/Id (or .../Number), or the PackML state code")
    good: str | None = None
    scrap: str | None = None
    stop_reason: str | None = None
    order: str | None = Field(default=None, description="current order; omit for MES-dispatch-driven plants")
    operation: str | None = None
    cycle_time: str | None = None
    operation_done: str | None = Field(default=None, description="Boolean: True when the operation is finished")


def _endpoint_kind(value: Any) -> str:
    url = value.get("url", "") if isinstance(value, dict) else getattr(value, "url", "")
    return "mqtt" if isinstance(url, str) and url.startswith(("mqtt://", "mqtts://")) else "opcua"


AnyEndpoint = Annotated[
    Annotated[EndpointConfig, Tag("opcua")] | Annotated[MqttEndpointConfig, Tag("mqtt")],
    Discriminator(_endpoint_kind),
]


class MachineConfig(_Strict):
    id: str = Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z_\-./]{0,39}$")
    endpoint: str
    work_center: str = Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z_\-./]{0,39}$")
    state_source: Literal["machinery", "packml"] = "machinery"
    nodes: MachineNodes | None = Field(default=None, description="OPC UA endpoints: role -> node reference")
    telemetry: dict[str, str] = Field(default_factory=dict)
    mqtt: Annotated[JsonSource | SparkplugSource, Field(discriminator="format")] | None = Field(
        default=None, description="MQTT endpoints: how the roles are read from the broker (see mqtt_config)"
    )
    unit: str = "H87"

    def reads(self, role: str) -> bool:
        """Whether the machine has a source for ``role`` (on whichever kind of endpoint)."""
        if self.mqtt is not None:
            return role in (self.mqtt.fields if isinstance(self.mqtt, JsonSource) else self.mqtt.metrics)
        return self.nodes is not None and getattr(self.nodes, role, None) is not None

    def node_refs(self) -> dict[str, str]:
        """role -> node reference (``{id}`` substituted); telemetry as ``extra:<name>``."""
        if self.nodes is None:
            return {}
        refs = {role: ref for role in NODE_ROLES if (ref := getattr(self.nodes, role)) is not None}
        refs.update({f"extra:{name}": ref for name, ref in self.telemetry.items()})
        return {role: ref.replace("{id}", self.id) for role, ref in refs.items()}


class EdgeConfig(_Strict):
    plant: str = Field(pattern=r"^[0-9A-Za-z]{1,4}$")
    source: str = Field(min_length=1, max_length=64)
    gateway: GatewayConfig
    endpoints: dict[str, AnyEndpoint] = Field(min_length=1)
    namespaces: dict[str, str] = Field(default_factory=dict, description="alias -> namespace URI for node refs")
    machines: list[MachineConfig] = Field(min_length=1)
    reason_map: dict[str, str] = Field(default_factory=dict, description="local stop reason -> plant reason code")
    default_reason: str = Field(default="UNSPECIFIED", max_length=200)
    min_downtime_s: float = Field(default=0.0, ge=0)
    final_on_order_change: bool = Field(
        default=False, description="an order/operation change ends the previous operation (final confirmation)"
    )
    rollup_interval_s: float = Field(default=60.0, gt=0)
    telemetry_upload: TelemetryUploadConfig = Field(
        default_factory=TelemetryUploadConfig,
        description="rollups to the gateway's telemetry archive (POST /v1/plant/telemetry) and local history",
    )
    outbox_path: Path = Path(".plantbridge/edge-outbox.db")
    counter_max: int = Field(default=UINT32_MAX, ge=1)
    wrap_window: int | None = Field(
        default=None, ge=1, description="a drop from within this distance of counter_max is a wrap (default 10%)"
    )
    uns: UnsConfig | None = Field(
        default=None, description="Unified Namespace out: each event the gateway accepted, to this broker's topic tree"
    )
    opcua: OpcUaClientConfig = Field(
        default_factory=OpcUaClientConfig, description="the agent's OPC UA identity: application URI, PKI directory"
    )

    @model_validator(mode="before")
    @classmethod
    def _apply_machine_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and "machine_defaults" in data:
            data = dict(data)
            defaults = data.pop("machine_defaults") or {}
            machines = data.get("machines")
            if isinstance(defaults, dict) and isinstance(machines, list):
                data["machines"] = [_merge(defaults, m) if isinstance(m, dict) else m for m in machines]
        return data

    @model_validator(mode="after")
    def _references(self) -> EdgeConfig:
        seen: set[str] = set()
        for i, machine in enumerate(self.machines):
            if machine.endpoint not in self.endpoints:
                raise ValueError(
                    f"machines.{i}.endpoint = {machine.endpoint!r}: no such endpoint "
                    f"(known: {', '.join(sorted(self.endpoints))})"
                )
            if machine.id in seen:
                raise ValueError(f"machines.{i}.id = {machine.id!r}: duplicate machine id")
            seen.add(machine.id)
            on_mqtt = isinstance(self.endpoints[machine.endpoint], MqttEndpointConfig)
            if on_mqtt and machine.mqtt is None:
                raise ValueError(f"machines.{i}.mqtt: machine {machine.id} is on MQTT endpoint "
                                 f"{machine.endpoint!r} and needs an mqtt block (format json or sparkplug)")
            if not on_mqtt and machine.nodes is None:
                raise ValueError(f"machines.{i}.nodes: machine {machine.id} is on OPC UA endpoint "
                                 f"{machine.endpoint!r} and needs nodes (at least nodes.state)")
        return self

    def opcua_endpoints(self) -> dict[str, EndpointConfig]:
        return {n: e for n, e in self.endpoints.items() if isinstance(e, EndpointConfig)}

    @property
    def application_uri(self) -> str:
        return self.opcua.application_uri or f"urn:plantbridge:edge:{self.source}"

    def mqtt_endpoints(self) -> dict[str, MqttEndpointConfig]:
        return {n: e for n, e in self.endpoints.items() if isinstance(e, MqttEndpointConfig)}

    @property
    def effective_wrap_window(self) -> int:
        return self.wrap_window if self.wrap_window is not None else max(1, (self.counter_max + 1) // 10)

    def map_reason(self, local: str) -> str:
        local = (local or "").strip()
        if not local:
            return self.default_reason
        return self.reason_map.get(local, local)[:200]


def _merge(defaults: dict[str, Any], machine: dict[str, Any]) -> dict[str, Any]:
    merged = dict(defaults)
    for key, value in machine.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _plain_loc(loc: tuple[int | str, ...]) -> list[str]:
    """The dotted path as the file has it: without the union tags pydantic adds (the endpoint kind,
    the mqtt format)."""
    parts: list[str] = []
    for i, part in enumerate(loc):
        if i >= 2 and loc[i - 2] == "endpoints" and part in ("opcua", "mqtt"):
            continue
        if i >= 1 and loc[i - 1] == "mqtt" and part in ("json", "sparkplug"):
            continue
        parts.append(str(part))
    return parts


def _format_errors(source: str, err: ValidationError, data: Any) -> str:
    lines = []
    for item in err.errors():
        loc = ".".join(_plain_loc(item["loc"])) or "(top level)"
        message = item["msg"]
        if loc == "(top level)" and message.startswith("Value error, "):
            lines.append(f"{source}: {message.removeprefix('Value error, ')}")
            continue
        value = item.get("input")
        if item["type"] == "missing":
            lines.append(f"{source}: {loc}: field required")
        elif isinstance(value, dict | list):
            lines.append(f"{source}: {loc}: {message.removeprefix('Value error, ')}")
        else:
            shown = repr(value)
            if len(shown) > 80:
                shown = shown[:77] + "..."
            lines.append(f"{source}: {loc} = {shown}: {message.removeprefix('Value error, ')}")
    return "\n".join(lines)


def parse_config(data: Any, source: str = "<config>") -> EdgeConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(data).__name__}")
    try:
        return EdgeConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_errors(source, err, data)) from None


def load_config(path: str | Path) -> EdgeConfig:
    """Read and validate an edge YAML file; relative paths inside it are relative to the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the configuration: {err.strerror or err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    config = parse_config(data, str(path))
    base = path.parent
    if not config.outbox_path.is_absolute():
        config.outbox_path = base / config.outbox_path
    for endpoint in [*config.endpoints.values(), *([config.uns] if config.uns else []), config.opcua]:
        for attr in ("client_cert", "client_key", "ca_cert", "pki_dir"):
            value = getattr(endpoint, attr, None)
            if value is not None and not value.is_absolute():
                setattr(endpoint, attr, base / value)
    return config
