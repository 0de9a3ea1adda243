"""What every service handler offers the OData gateway, with store-backed defaults."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from plantbridge_devtools.simulators.sap import messages
from plantbridge_devtools.simulators.sap.edm import EntityType, FunctionImport, Schema
from plantbridge_devtools.simulators.sap.odata import Entity, with_initials
from plantbridge_devtools.simulators.sap.runtime import Context, Runtime
from plantbridge_devtools.simulators.sap.state import make_key

Navigator = Callable[[Entity], "list[Entity] | Entity | None"]


@dataclass
class Created:
    """A created entity and the navigation properties to show expanded (deep insert)."""

    set_name: str
    entity: Entity
    expand: tuple[str, ...] = ()


@dataclass
class FunctionResult:
    """Result of a function import: a complex value, or an entity of ``set_name``."""

    value: dict[str, Any]
    set_name: str | None = None


class ServiceHandler:
    """Default handler: entity sets backed by store kinds, navigations by functions."""

    schema: Schema
    kinds: dict[str, str] = {}

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.navigators: dict[tuple[str, str], Navigator] = {}

    def etype(self, set_name: str) -> EntityType:
        entity_set = self.schema.entity_set(set_name)
        if entity_set is None:
            raise messages.not_found(set_name)
        return self.schema.entity_type(entity_set.entity_type)

    def complete(self, set_name: str, entity: Entity) -> Entity:
        return with_initials(self.etype(set_name), entity)

    # --- reading -----------------------------------------------------------------------------

    def entities(self, set_name: str) -> list[Entity]:
        kind = self.kinds.get(set_name)
        if kind is None:
            raise messages.not_implemented(f"{set_name.upper()}_GET_ENTITYSET")
        return [self.complete(set_name, e) for e in self.rt.store.all(kind)]

    def lookup(self, set_name: str, key: dict[str, str]) -> Entity | None:
        etype = self.etype(set_name)
        kind = self.kinds.get(set_name)
        if kind is None:
            raise messages.not_implemented(f"{set_name.upper()}_GET_ENTITY")
        found = self.rt.store.get(kind, make_key(*(key[k] for k in etype.keys)))
        return None if found is None else self.complete(set_name, found)

    def navigate(self, set_name: str, entity: Entity, nav: str) -> list[Entity] | Entity | None:
        navigator = self.navigators.get((set_name, nav))
        if navigator is None:
            raise messages.not_implemented(f"{nav.upper()}_GET_ENTITYSET")
        return navigator(entity)

    # --- changing ----------------------------------------------------------------------------

    def create(self, set_name: str, body: Any, ctx: Context) -> Created:
        raise messages.not_implemented(f"{set_name.upper()}_CREATE_ENTITY")

    def update(self, set_name: str, key: dict[str, str], body: Any, ctx: Context, if_match: str | None) -> None:
        raise messages.not_implemented(f"{set_name.upper()}_UPDATE_ENTITY")

    def call(
        self, function: FunctionImport, params: dict[str, Any], ctx: Context, if_match: str | None
    ) -> FunctionResult:
        raise messages.not_implemented(f"{function.name.upper()}_EXECUTE_ACTION")
