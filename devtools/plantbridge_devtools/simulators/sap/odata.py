"""OData v2 as SAP Gateway speaks it: value literals, JSON envelopes, ETags and error bodies.

Values are kept in a *canonical* form inside the simulator (and in its SQLite file):

=====================  ==========================  ======================================
Edm type               canonical                   JSON on the wire
=====================  ==========================  ======================================
Edm.String             ``str``                     ``"..."`` (``""`` when initial)
Edm.Decimal            ``str`` ("12.5")            ``"12.500"`` (string, full scale)
Edm.DateTime (date)    ``"YYYY-MM-DD"``/None       ``"/Date(1714521600000)/"`` / null
Edm.Time               ``"HH:MM:SS"``/None         ``"PT08H30M00S"`` (``PT00H00M00S`` initial)
Edm.DateTimeOffset     ``"YYYY-MM-DDTHH:MM:SSZ"``  ``"/Date(1714521600000+0000)/"`` / null
Edm.Boolean            ``bool``                    ``true``/``false``
Edm.Guid               lower-case ``str``/None     ``"0123..."`` (all zeros when initial)
Edm.Byte/Int16/Int32   ``int``                     number
=====================  ==========================  ======================================

Like ABAP, the simulator renders initial values instead of nulls except for dates.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from plantbridge_devtools.simulators.sap import messages
from plantbridge_devtools.simulators.sap.edm import EntityType, Property, Schema
from plantbridge_devtools.simulators.sap.messages import Detail, SapError

Entity = dict[str, Any]

NULL_GUID = "00000000-0000-0000-0000-000000000000"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATE_LITERAL = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:\.\d+)?S)?$")
_INTEGERS = {"Edm.Byte": (0, 255), "Edm.Int16": (-32768, 32767), "Edm.Int32": (-(2**31), 2**31 - 1)}


# --- canonical <-> python ---------------------------------------------------------------------


def to_decimal(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    return Decimal(str(value))


def dec_str(value: Decimal) -> str:
    """Canonical decimal text: no exponent, no superfluous trailing zeros."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def date_of(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def timestamp_str(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def numeric_key(value: str) -> str:
    """SAP's ALPHA conversion: leading zeros of all-digit keys are insignificant."""
    return (value.lstrip("0") or "0") if value.isdigit() else value


# --- wire -> canonical ------------------------------------------------------------------------


def _parse_date(prop: Property, raw: Any) -> str | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise messages.invalid_value(prop.name, f"expected a date literal, got {raw!r}")
    m = _DATE_LITERAL.match(raw)
    try:
        if m:
            moment = _EPOCH + timedelta(milliseconds=int(m.group(1)))
            return moment.date().isoformat()
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).date().isoformat()
    except ValueError as exc:
        raise messages.invalid_value(prop.name, f"'{raw}' is not a valid Edm.DateTime") from exc


def _parse_timestamp(prop: Property, raw: Any) -> str | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise messages.invalid_value(prop.name, f"expected a timestamp literal, got {raw!r}")
    m = _DATE_LITERAL.match(raw)
    try:
        if m:
            moment = _EPOCH + timedelta(milliseconds=int(m.group(1)))
            if m.group(2):
                sign = 1 if m.group(2)[0] == "+" else -1
                moment -= sign * timedelta(hours=int(m.group(2)[1:3]), minutes=int(m.group(2)[3:5]))
            return timestamp_str(moment)
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return timestamp_str(parsed)
    except ValueError as exc:
        raise messages.invalid_value(prop.name, f"'{raw}' is not a valid Edm.DateTimeOffset") from exc


def parse_time(raw: str) -> str | None:
    m = _DURATION.match(raw)
    if m and any(m.groups()):
        h, mi, s = (int(g or 0) for g in m.groups())
        if h < 24 and mi < 60 and s < 60:
            return f"{h:02d}:{mi:02d}:{s:02d}"
        return None
    try:
        return time.fromisoformat(raw).replace(microsecond=0).isoformat()
    except ValueError:
        return None


def _parse_decimal(prop: Property, raw: Any) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise messages.invalid_value(prop.name, f"expected a decimal, got {raw!r}")
    try:
        value = Decimal(str(raw))
    except InvalidOperation as exc:
        raise messages.invalid_value(prop.name, f"'{raw}' is not a valid Edm.Decimal") from exc
    if not value.is_finite():
        raise messages.invalid_value(prop.name, f"'{raw}' is not a valid Edm.Decimal")
    scale = prop.scale or 0
    value = value.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)
    if prop.precision is not None and len(str(abs(int(value)))) > prop.precision - scale:
        raise messages.invalid_value(prop.name, f"'{raw}' exceeds precision {prop.precision} scale {scale}")
    return dec_str(value)


def _parse_guid(prop: Property, raw: Any) -> str | None:
    if raw is None or raw == "":
        return None
    try:
        return str(uuid.UUID(str(raw)))
    except ValueError as exc:
        raise messages.invalid_value(prop.name, f"'{raw}' is not a valid Edm.Guid") from exc


def from_wire(prop: Property, raw: Any) -> Any:
    """Convert a JSON request value into the canonical form, validating it against ``prop``."""
    t = prop.type
    if t == "Edm.String":
        if raw is None:
            return ""
        if not isinstance(raw, str):
            raise messages.invalid_value(prop.name, f"expected a string, got {raw!r}")
        if prop.max_length is not None and len(raw) > prop.max_length:
            raise messages.invalid_value(prop.name, f"'{raw}' is longer than {prop.max_length} characters")
        return raw
    if t == "Edm.Decimal":
        return "0" if raw is None else _parse_decimal(prop, raw)
    if t == "Edm.DateTime":
        return _parse_date(prop, raw)
    if t == "Edm.DateTimeOffset":
        return _parse_timestamp(prop, raw)
    if t == "Edm.Time":
        if raw is None or raw == "":
            return None
        parsed = parse_time(raw) if isinstance(raw, str) else None
        if parsed is None:
            raise messages.invalid_value(prop.name, f"'{raw}' is not a valid Edm.Time (PThhHmmMssS)")
        return parsed
    if t == "Edm.Boolean":
        if raw is None:
            return False
        if not isinstance(raw, bool):
            raise messages.invalid_value(prop.name, f"expected true or false, got {raw!r}")
        return raw
    if t == "Edm.Guid":
        return _parse_guid(prop, raw)
    if t in _INTEGERS:
        if raw is None:
            return 0
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise messages.invalid_value(prop.name, f"expected an integer, got {raw!r}")
        try:
            value = int(raw)
        except ValueError as exc:
            raise messages.invalid_value(prop.name, f"'{raw}' is not an integer") from exc
        low, high = _INTEGERS[t]
        if not low <= value <= high:
            raise messages.invalid_value(prop.name, f"{value} is out of range for {t}")
        return value
    if t == "Edm.Double":
        return 0.0 if raw is None else float(raw)
    raise messages.invalid_value(prop.name, f"unsupported type {t}")


def parse_payload(etype: EntityType, payload: Any, *, allow_nav: bool = True) -> tuple[Entity, dict[str, Any]]:
    """Split a request body into canonical properties and (deep-insert) navigation payloads."""
    if not isinstance(payload, dict):
        raise messages.bad_request("The request body must be a JSON object")
    values: Entity = {}
    navs: dict[str, Any] = {}
    for name, raw in payload.items():
        if name == "__metadata":
            continue
        if etype.nav(name) is not None and allow_nav:
            navs[name] = raw
            continue
        prop = etype.prop(name)
        if prop is None:
            raise messages.invalid_property(name, etype.name)
        values[name] = from_wire(prop, raw)
    return values, navs


def nav_items(raw: Any, nav: str) -> list[Any]:
    """A deep-insert navigation value: ``[...]`` or ``{"results": [...]}``."""
    if isinstance(raw, dict) and isinstance(raw.get("results"), list):
        return list(raw["results"])
    if isinstance(raw, list):
        return raw
    raise messages.bad_request(f"Navigation property '{nav}' must be an array or {{\"results\": [...]}}")


# --- canonical -> wire ------------------------------------------------------------------------


def _ms(moment: datetime) -> int:
    return int((moment - _EPOCH) / timedelta(milliseconds=1))


def to_wire(prop: Property, value: Any, *, trim_decimals: bool = False) -> Any:
    t = prop.type
    if t == "Edm.String":
        return "" if value is None else str(value)
    if t == "Edm.Decimal":
        number = to_decimal(value)
        if trim_decimals:
            return dec_str(number)
        return format(number.quantize(Decimal(1).scaleb(-(prop.scale or 0))), "f")
    if t == "Edm.DateTime":
        if not value:
            return None
        return f"/Date({_ms(datetime.combine(date.fromisoformat(value), time(), UTC))})/"
    if t == "Edm.DateTimeOffset":
        if not value:
            return None
        return f"/Date({_ms(datetime.fromisoformat(value.replace('Z', '+00:00')))}+0000)/"
    if t == "Edm.Time":
        h, m, s = (int(x) for x in (value or "00:00:00").split(":"))
        return f"PT{h:02d}H{m:02d}M{s:02d}S"
    if t == "Edm.Boolean":
        return bool(value)
    if t == "Edm.Guid":
        return value or NULL_GUID
    if t in _INTEGERS:
        return int(value or 0)
    if t == "Edm.Double":
        return float(value or 0)
    return value


def initial_value(prop: Property) -> Any:
    """ABAP initial value of a property, in canonical form."""
    return {
        "Edm.String": "",
        "Edm.Decimal": "0",
        "Edm.Boolean": False,
        "Edm.Byte": 0,
        "Edm.Int16": 0,
        "Edm.Int32": 0,
        "Edm.Double": 0.0,
    }.get(prop.type)


def with_initials(etype: EntityType, values: Entity) -> Entity:
    """Complete ``values`` with the initial value of every property it does not set."""
    full = {p.name: initial_value(p) for p in etype.properties}
    full.update(values)
    return full


# --- keys, URIs and ETags ---------------------------------------------------------------------


def key_predicate(etype: EntityType, entity: Entity) -> str:
    def literal(name: str) -> str:
        prop = etype.prop(name)
        value = entity.get(name) or ""
        if prop is not None and prop.type == "Edm.Guid":
            return f"guid'{value}'"
        return "'" + str(value).replace("'", "''") + "'"

    if len(etype.keys) == 1:
        return f"({literal(etype.keys[0])})"
    return "(" + ",".join(f"{k}={literal(k)}" for k in etype.keys) + ")"


def etag_of(etype: EntityType, entity: Entity) -> str | None:
    """The weak ETag SAP derives from the entity's concurrency token."""
    prop = etype.etag_property
    if prop is None:
        return None
    value = entity.get(prop.name)
    if prop.type == "Edm.DateTimeOffset":
        moment = (value or "1970-01-01T00:00:00Z").replace("Z", "")
        return f"W/\"datetimeoffset'{quote(moment + '.0000000Z', safe='')}'\""
    return f"W/\"'{value or ''}'\""


def etag_matches(if_match: str, current: str) -> bool:
    def bare(tag: str) -> str:
        tag = tag.strip()
        return tag[2:] if tag.startswith("W/") else tag

    candidates = [c for c in (part.strip() for part in if_match.split(",")) if c]
    return any(c == "*" or bare(c) == bare(current) for c in candidates)


def serialize(
    schema: Schema,
    etype: EntityType,
    entity: Entity,
    service_root: str,
    *,
    set_name: str,
    select: set[str] | None = None,
    expanded: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Render one entity as SAP does: ``__metadata``, properties, deferred or expanded navigations."""
    uri = f"{service_root}{set_name}{key_predicate(etype, entity)}"
    meta: dict[str, Any] = {"id": uri, "uri": uri, "type": schema.qualified(etype.name)}
    etag = etag_of(etype, entity)
    if etag is not None:
        meta["etag"] = etag
    out: dict[str, Any] = {"__metadata": meta}
    for prop in etype.properties:
        if select is None or prop.name in select:
            out[prop.name] = to_wire(prop, entity.get(prop.name), trim_decimals=etype.trim_decimals)
    expanded = expanded or {}
    for nav in etype.navigations:
        if nav.name in expanded:
            out[nav.name] = expanded[nav.name]
        elif select is None or nav.name in select:
            out[nav.name] = {"__deferred": {"uri": f"{uri}/{nav.name}"}}
    return out


def serialize_complex(schema: Schema, type_name: str, values: dict[str, Any]) -> dict[str, Any]:
    ctype = schema.complex_type(type_name)
    out: dict[str, Any] = {"__metadata": {"type": schema.qualified(type_name)}}
    for prop in ctype.properties:
        out[prop.name] = to_wire(prop, values.get(prop.name, initial_value(prop)))
    return out


# --- errors and messages ----------------------------------------------------------------------


def _detail_json(detail: Detail) -> dict[str, Any]:
    return {
        "ContentID": "",
        "code": detail.code,
        "message": detail.message,
        "propertyref": detail.propertyref,
        "severity": detail.severity,
        "target": detail.target,
        "transition": False,
    }


def error_body(error: SapError, service: str) -> dict[str, Any]:
    """The JSON error body of SAP Gateway (same structure as the captured XML bodies)."""
    moment = datetime.now(UTC)
    return {
        "error": {
            "code": error.code,
            "message": {"lang": "en", "value": error.message},
            "innererror": {
                "application": {
                    "component_id": "",
                    "service_namespace": "/SAP/",
                    "service_id": service,
                    "service_version": "0001",
                },
                "transactionid": uuid.uuid4().hex.upper(),
                "timestamp": moment.strftime("%Y%m%d%H%M%S.") + f"{moment.microsecond:06d}0",
                "Error_Resolution": {
                    "SAP_Transaction": (
                        'For backend administrators: use ADT feed reader "SAP Gateway Error Log" or run '
                        "transaction /IWFND/ERROR_LOG on SAP Gateway hub system and search for entries "
                        "with the timestamp above for more details"
                    ),
                    "SAP_Note": (
                        "See SAP Note 1797736 for error analysis (https://service.sap.com/sap/support/notes/1797736)"
                    ),
                },
                "errordetails": [_detail_json(d) for d in error.details],
            },
        }
    }


def sap_message_header(code: str, text: str, details: list[Detail] | None = None, severity: str = "success") -> str:
    """Value of the ``sap-message`` response header (JSON, as SAP Gateway sends it)."""
    return json.dumps(
        {
            "code": code,
            "message": text,
            "longtext_url": "",
            "target": "",
            "severity": severity,
            "transition": False,
            "details": [
                {"code": d.code, "message": d.message, "longtext_url": "", "target": d.target, "severity": d.severity}
                for d in details or []
            ],
        },
        separators=(",", ":"),
    )
