"""A small Entity Data Model (OData v2 CSDL) description of what the simulator serves.

Each service module under ``schemas/`` declares the subset of SAP's entity types, entity sets,
complex types and function imports that the simulator implements, using the constructors below.
``metadata.py`` renders these descriptions as EDMX; ``odata.py`` uses them to (de)serialise values.
The names, Edm types, MaxLength/Precision/Scale and nullability follow SAP's published
``$metadata`` of the same services; labels and other annotations are not reproduced.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Property:
    """A structural property of an entity or complex type."""

    name: str
    type: str
    max_length: int | None = None
    precision: int | None = None
    scale: int | None = None
    nullable: bool = True
    etag: bool = False


def string(name: str, max_length: int | None = None, *, nullable: bool = True, etag: bool = False) -> Property:
    return Property(name, "Edm.String", max_length=max_length, nullable=nullable, etag=etag)


def decimal(name: str, precision: int, scale: int, *, nullable: bool = True) -> Property:
    return Property(name, "Edm.Decimal", precision=precision, scale=scale, nullable=nullable)


def date(name: str, *, nullable: bool = True) -> Property:
    """``Edm.DateTime`` with Precision 0, used by SAP for calendar dates (``sap:display-format="Date"``)."""
    return Property(name, "Edm.DateTime", precision=0, nullable=nullable)


def time(name: str, *, nullable: bool = True) -> Property:
    return Property(name, "Edm.Time", precision=0, nullable=nullable)


def timestamp(name: str, *, nullable: bool = True, etag: bool = False) -> Property:
    return Property(name, "Edm.DateTimeOffset", precision=0, nullable=nullable, etag=etag)


def boolean(name: str, *, nullable: bool = True) -> Property:
    return Property(name, "Edm.Boolean", nullable=nullable)


def guid(name: str, *, nullable: bool = True) -> Property:
    return Property(name, "Edm.Guid", nullable=nullable)


def byte(name: str, *, nullable: bool = True) -> Property:
    return Property(name, "Edm.Byte", nullable=nullable)


def int16(name: str, *, nullable: bool = True) -> Property:
    return Property(name, "Edm.Int16", nullable=nullable)


def int32(name: str, *, nullable: bool = True) -> Property:
    return Property(name, "Edm.Int32", nullable=nullable)


def double(name: str, *, nullable: bool = True) -> Property:
    return Property(name, "Edm.Double", nullable=nullable)


@dataclass(frozen=True)
class Navigation:
    """A navigation property; ``target`` is the (unqualified) name of the target entity type."""

    name: str
    target: str
    to_many: bool


@dataclass(frozen=True)
class EntityType:
    name: str
    keys: tuple[str, ...]
    properties: tuple[Property, ...]
    navigations: tuple[Navigation, ...] = ()
    # Some SAP implementations (e.g. the production order header) render decimals without
    # trailing zeros ("1000"), others with their full scale ("444.444", "0.000").
    trim_decimals: bool = False
    _by_name: dict[str, Property] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({p.name: p for p in self.properties})
        missing = [k for k in self.keys if k not in self._by_name]
        if missing:
            raise ValueError(f"{self.name}: key properties {missing} are not declared")

    def prop(self, name: str) -> Property | None:
        return self._by_name.get(name)

    def nav(self, name: str) -> Navigation | None:
        return next((n for n in self.navigations if n.name == name), None)

    @property
    def etag_property(self) -> Property | None:
        return next((p for p in self.properties if p.etag), None)


@dataclass(frozen=True)
class ComplexType:
    name: str
    properties: tuple[Property, ...]


@dataclass(frozen=True)
class EntitySet:
    name: str
    entity_type: str
    creatable: bool = False
    updatable: bool = False
    deletable: bool = False


@dataclass(frozen=True)
class FunctionImport:
    """A function import; ``return_type`` is an unqualified entity or complex type name."""

    name: str
    return_type: str
    parameters: tuple[Property, ...]
    entity_set: str | None = None
    http_method: str = "POST"
    action_for: str | None = None


@dataclass(frozen=True)
class Schema:
    """One OData service: its namespace (``API_..._SRV`` or ``cds_...``) and what it offers."""

    service: str
    namespace: str
    entity_types: tuple[EntityType, ...]
    entity_sets: tuple[EntitySet, ...]
    complex_types: tuple[ComplexType, ...] = ()
    function_imports: tuple[FunctionImport, ...] = ()

    @property
    def container(self) -> str:
        return f"{self.namespace}_Entities"

    def entity_type(self, name: str) -> EntityType:
        for t in self.entity_types:
            if t.name == name:
                return t
        raise KeyError(name)

    def complex_type(self, name: str) -> ComplexType:
        for t in self.complex_types:
            if t.name == name:
                return t
        raise KeyError(name)

    def entity_set(self, name: str) -> EntitySet | None:
        return next((s for s in self.entity_sets if s.name == name), None)

    def set_for_type(self, type_name: str) -> EntitySet:
        for s in self.entity_sets:
            if s.entity_type == type_name:
                return s
        raise KeyError(type_name)

    def function(self, name: str) -> FunctionImport | None:
        return next((f for f in self.function_imports if f.name == name), None)

    def qualified(self, type_name: str) -> str:
        return f"{self.namespace}.{type_name}"
