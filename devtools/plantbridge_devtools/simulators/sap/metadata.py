"""Render a :class:`~plantbridge_devtools.simulators.sap.edm.Schema` as an OData v2 EDMX ``$metadata`` document.

The document is written by the simulator from its own description of the served subset; it
follows the shape SAP Gateway produces (EDMX 1.0, ``DataServiceVersion`` 2.0, ``sap:`` annotations
for the set capabilities) but declares only what the simulator implements.
"""

from __future__ import annotations

from xml.etree import ElementTree as ET

from plantbridge_devtools.simulators.sap.edm import EntityType, Property, Schema

EDMX_NS = "http://schemas.microsoft.com/ado/2007/06/edmx"
EDM_NS = "http://schemas.microsoft.com/ado/2008/09/edm"
M_NS = "http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"
SAP_NS = "http://www.sap.com/Protocols/SAPData"

ET.register_namespace("edmx", EDMX_NS)
ET.register_namespace("m", M_NS)
ET.register_namespace("sap", SAP_NS)
ET.register_namespace("", EDM_NS)


def _edm(tag: str) -> str:
    return f"{{{EDM_NS}}}{tag}"


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _property(parent: ET.Element, prop: Property, tag: str = "Property") -> ET.Element:
    el = ET.SubElement(parent, _edm(tag), Name=prop.name, Type=prop.type)
    if tag == "Parameter":
        el.set("Mode", "In")
    if tag == "Parameter":
        # SAP writes Nullable="true" on optional parameters and nothing on mandatory ones.
        if prop.nullable:
            el.set("Nullable", "true")
    elif not prop.nullable:
        el.set("Nullable", "false")
    if prop.max_length is not None:
        el.set("MaxLength", str(prop.max_length))
    if prop.precision is not None:
        el.set("Precision", str(prop.precision))
    if prop.scale is not None:
        el.set("Scale", str(prop.scale))
    if prop.etag:
        el.set("ConcurrencyMode", "Fixed")
    if prop.type == "Edm.DateTime":
        el.set(f"{{{SAP_NS}}}display-format", "Date")
    return el


def _association_name(source: EntityType, nav_name: str) -> str:
    return f"assoc_{source.name}_{nav_name}"


def render_metadata(schema: Schema) -> bytes:
    """Return the EDMX document for ``schema`` as UTF-8 bytes."""
    edmx = ET.Element(f"{{{EDMX_NS}}}Edmx", Version="1.0")
    services = ET.SubElement(edmx, f"{{{EDMX_NS}}}DataServices")
    services.set(f"{{{M_NS}}}DataServiceVersion", "2.0")
    sch = ET.SubElement(services, _edm("Schema"), Namespace=schema.namespace)
    sch.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
    sch.set(f"{{{SAP_NS}}}schema-version", "1")

    for et in schema.entity_types:
        type_el = ET.SubElement(sch, _edm("EntityType"), Name=et.name)
        type_el.set(f"{{{SAP_NS}}}content-version", "1")
        key = ET.SubElement(type_el, _edm("Key"))
        for name in et.keys:
            ET.SubElement(key, _edm("PropertyRef"), Name=name)
        for prop in et.properties:
            _property(type_el, prop)
        for nav in et.navigations:
            assoc = _association_name(et, nav.name)
            ET.SubElement(
                type_el,
                _edm("NavigationProperty"),
                Name=nav.name,
                Relationship=f"{schema.namespace}.{assoc}",
                FromRole=f"FromRole_{assoc}",
                ToRole=f"ToRole_{assoc}",
            )

    for ct in schema.complex_types:
        ct_el = ET.SubElement(sch, _edm("ComplexType"), Name=ct.name)
        for prop in ct.properties:
            _property(ct_el, prop)

    associations: list[tuple[str, EntityType, str, bool]] = []
    for et in schema.entity_types:
        for nav in et.navigations:
            assoc = _association_name(et, nav.name)
            associations.append((assoc, et, nav.target, nav.to_many))
            a_el = ET.SubElement(sch, _edm("Association"), Name=assoc)
            a_el.set(f"{{{SAP_NS}}}content-version", "1")
            ET.SubElement(
                a_el,
                _edm("End"),
                Type=schema.qualified(et.name),
                Multiplicity="1",
                Role=f"FromRole_{assoc}",
            )
            ET.SubElement(
                a_el,
                _edm("End"),
                Type=schema.qualified(nav.target),
                Multiplicity="*" if nav.to_many else "1",
                Role=f"ToRole_{assoc}",
            )

    container = ET.SubElement(sch, _edm("EntityContainer"), Name=schema.container)
    container.set(f"{{{M_NS}}}IsDefaultEntityContainer", "true")
    container.set(f"{{{SAP_NS}}}supported-formats", "json")
    for es in schema.entity_sets:
        es_el = ET.SubElement(container, _edm("EntitySet"), Name=es.name, EntityType=schema.qualified(es.entity_type))
        es_el.set(f"{{{SAP_NS}}}creatable", _flag(es.creatable))
        es_el.set(f"{{{SAP_NS}}}updatable", _flag(es.updatable))
        es_el.set(f"{{{SAP_NS}}}deletable", _flag(es.deletable))
        es_el.set(f"{{{SAP_NS}}}content-version", "1")
    for assoc, source, target, _ in associations:
        as_el = ET.SubElement(
            container, _edm("AssociationSet"), Name=f"{assoc}_set", Association=f"{schema.namespace}.{assoc}"
        )
        as_el.set(f"{{{SAP_NS}}}creatable", "false")
        as_el.set(f"{{{SAP_NS}}}updatable", "false")
        as_el.set(f"{{{SAP_NS}}}deletable", "false")
        as_el.set(f"{{{SAP_NS}}}content-version", "1")
        ET.SubElement(as_el, _edm("End"), EntitySet=schema.set_for_type(source.name).name, Role=f"FromRole_{assoc}")
        ET.SubElement(as_el, _edm("End"), EntitySet=schema.set_for_type(target).name, Role=f"ToRole_{assoc}")
    for fi in schema.function_imports:
        fi_el = ET.SubElement(
            container, _edm("FunctionImport"), Name=fi.name, ReturnType=schema.qualified(fi.return_type)
        )
        if fi.entity_set:
            fi_el.set("EntitySet", fi.entity_set)
        fi_el.set(f"{{{M_NS}}}HttpMethod", fi.http_method)
        if fi.action_for:
            fi_el.set(f"{{{SAP_NS}}}action-for", schema.qualified(fi.action_for))
        for param in fi.parameters:
            _property(fi_el, param, tag="Parameter")

    ET.indent(edmx)
    body: bytes = ET.tostring(edmx, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body
