"""Schemathesis hooks for the contract test (loaded by the `st` process through SCHEMATHESIS_HOOKS).

The IDoc intake takes a whole XML document as its body (schema: a string). Schemathesis would wrap a string
in an XML element of its own; a real ERP sends the document itself, so XML bodies go on the wire as they are.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis


@schemathesis.serializer("application/xml", "text/xml")
def raw_xml(_ctx: Any, value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return json.dumps(value).encode()  # negative data of another type: sent as it is, refused by the gateway
