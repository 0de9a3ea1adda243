"""The search attributes the order saga sets, so supervisors find orders by plant and state."""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey

PLANT = SearchAttributeKey.for_keyword("Plant")
ORDER_NUMBER = SearchAttributeKey.for_keyword("OrderNumber")
MATERIAL = SearchAttributeKey.for_keyword("Material")
WORK_CENTER = SearchAttributeKey.for_keyword_list("WorkCenter")
ORDER_STATE = SearchAttributeKey.for_keyword("OrderState")
OPEN_EXCEPTIONS = SearchAttributeKey.for_int("OpenExceptions")
ERP_SYSTEM = SearchAttributeKey.for_keyword("ErpSystem")

ALL_KEYS: tuple[SearchAttributeKey[Any], ...] = (
    PLANT,
    ORDER_NUMBER,
    MATERIAL,
    WORK_CENTER,
    ORDER_STATE,
    OPEN_EXCEPTIONS,
    ERP_SYSTEM,
)
_TYPE_NAMES = {
    "KEYWORD": "Keyword",
    "KEYWORD_LIST": "KeywordList",
    "INT": "Int",
    "TEXT": "Text",
    "DOUBLE": "Double",
    "BOOL": "Bool",
    "DATETIME": "Datetime",
}


def dev_server_args() -> list[str]:
    """`--search-attribute Name=Type` arguments for `temporal server start-dev`."""
    args: list[str] = []
    for key in ALL_KEYS:
        type_name = _TYPE_NAMES[key.indexed_value_type.name.removeprefix("INDEXED_VALUE_TYPE_")]
        args += ["--search-attribute", f"{key.name}={type_name}"]
    return args
