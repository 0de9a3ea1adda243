"""The pydantic payload converter, built once per process.

The SDK constructs the data converter's payload converter class again and again: for every workflow
instance it creates (`payload_converter_factory`) and twice per workflow activation (the
command-aware converter it wraps around the activation's payloads). `PydanticPayloadConverter`
builds a new JSON converter each time, with an empty cache of pydantic `TypeAdapter`s, so every new
or replayed saga also built the adapters of its input, update and activity types again.

`SharedPydanticPayloadConverter` builds the converters once and hands the same ones to every
instance. They hold no per-context state (none of them takes a serialization context) and the
adapter cache is an `lru_cache`, safe across the workflow task threads; the cache keys are types
of the modules the sandbox passes through (canonical models, workflows), the same objects in every
sandbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import DataConverter, EncodingPayloadConverter


class SharedPydanticPayloadConverter(PydanticPayloadConverter):
    """`PydanticPayloadConverter` (same encodings and behaviour) whose construction reuses converters built once."""

    _shared: ClassVar[Mapping[bytes, EncodingPayloadConverter] | None] = None

    def __init__(self) -> None:
        shared = SharedPydanticPayloadConverter._shared
        if shared is None:
            super().__init__()
            SharedPydanticPayloadConverter._shared = self.converters
        else:
            self.converters = shared  # read only: the composite looks converters up, never changes them


pydantic_data_converter = DataConverter(payload_converter_class=SharedPydanticPayloadConverter)
"""`temporalio.contrib.pydantic.pydantic_data_converter` with the shared payload converter."""
