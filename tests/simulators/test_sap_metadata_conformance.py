"""The simulator's ``$metadata`` must be a strict subset of SAP's real ``$metadata``.

SAP's EDMX files live in ``../shared/fixtures/sap/edmx`` (outside the repository: they declare no
licence, so they are not copied into it). Every entity set, entity type, property (Edm type,
MaxLength, Precision, Scale, Nullable=false, ConcurrencyMode), key, navigation property (and its
target), complex type and function import (with parameters) the simulator serves must exist in
SAP's document with the same definition.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree as ET

import httpx
import pytest

from plantbridge_devtools.simulators.sap.server import SimulatorServer

EDMX_DIR = Path(__file__).resolve().parents[2].parent / "shared/fixtures/sap/edmx"
FILES = {
    "API_PRODUCTION_ORDER_2_SRV": "API_PRODUCTION_ORDER_2_SRV.edmx",
    # Renamed by the repository it was taken from; its schema namespace is API_PROD_ORDER_CONFIRMATION_2_SRV.
    "API_PROD_ORDER_CONFIRMATION_2_SRV": "ZAPI_PROD_ORDER_CONFIRMATION_2_SRV.xml",
    "API_MATERIAL_DOCUMENT_SRV": "API_MATERIAL_DOCUMENT_SRV.edmx",
    "API_INSPECTIONLOT_SRV": "API_INSPECTIONLOT_SRV.edmx",
    "API_MAINTNOTIFICATION": "API_MAINTNOTIFICATION.edmx",
}
EDM = "{http://schemas.microsoft.com/ado/2008/09/edm}"
M = "{http://schemas.microsoft.com/ado/2007/08/dataservices/metadata}"
FACETS = ("Type", "MaxLength", "Precision", "Scale", "ConcurrencyMode")

pytestmark = pytest.mark.skipif(
    not EDMX_DIR.is_dir(),
    reason=f"SAP's $metadata files are not in this checkout ({EDMX_DIR} is absent; ../shared is not part of a clone)",
)


class Edmx:
    """Index of one EDMX document's schema."""

    def __init__(self, xml: bytes) -> None:
        root = ET.fromstring(xml)
        self.schema = next(root.iter(f"{EDM}Schema"))
        self.namespace = self.schema.get("Namespace", "")
        self.types = {t.get("Name"): t for t in self.schema.findall(f"{EDM}EntityType")}
        self.complex = {t.get("Name"): t for t in self.schema.findall(f"{EDM}ComplexType")}
        self.associations = {a.get("Name"): a for a in self.schema.findall(f"{EDM}Association")}
        container = self.schema.find(f"{EDM}EntityContainer")
        assert container is not None
        self.sets = {s.get("Name"): s for s in container.findall(f"{EDM}EntitySet")}
        self.functions = {f.get("Name"): f for f in container.findall(f"{EDM}FunctionImport")}

    def nav_target(self, entity_type: ET.Element, nav: ET.Element) -> str:
        assoc = self.associations[nav.get("Relationship", "").split(".")[-1]]
        end = next(e for e in assoc.findall(f"{EDM}End") if e.get("Role") == nav.get("ToRole"))
        return end.get("Type", "").split(".")[-1]


def _props(element: ET.Element, tag: str = "Property") -> dict[str, ET.Element]:
    return {p.get("Name", ""): p for p in element.findall(f"{EDM}{tag}")}


def _check_property(where: str, ours: ET.Element, theirs: ET.Element | None) -> list[str]:
    if theirs is None:
        return [f"{where}: not in SAP's metadata"]
    problems = [
        f"{where}: {facet} {ours.get(facet)!r} != SAP's {theirs.get(facet)!r}"
        for facet in FACETS
        if ours.get(facet) is not None and ours.get(facet) != theirs.get(facet)
    ]
    if ours.get("Nullable") == "false" and theirs.get("Nullable") != "false" and ours.tag == f"{EDM}Property":
        problems.append(f"{where}: Nullable=false but nullable in SAP's metadata")
    return problems


def compare(ours: Edmx, theirs: Edmx) -> list[str]:
    problems: list[str] = []
    if ours.namespace != theirs.namespace:
        problems.append(f"namespace {ours.namespace} != {theirs.namespace}")
    for name, etype in ours.types.items():
        real = theirs.types.get(name)
        if real is None:
            problems.append(f"entity type {name}: not in SAP's metadata")
            continue
        our_keys = [k.get("Name") for k in etype.iter(f"{EDM}PropertyRef")]
        real_keys = [k.get("Name") for k in real.iter(f"{EDM}PropertyRef")]
        if our_keys != real_keys:
            problems.append(f"{name}: key {our_keys} != SAP's {real_keys}")
        real_props = _props(real)
        for prop_name, prop in _props(etype).items():
            problems += _check_property(f"{name}.{prop_name}", prop, real_props.get(prop_name))
        real_navs = _props(real, "NavigationProperty")
        for nav_name, nav in _props(etype, "NavigationProperty").items():
            if nav_name not in real_navs:
                problems.append(f"{name}.{nav_name}: navigation not in SAP's metadata")
            elif ours.nav_target(etype, nav) != theirs.nav_target(real, real_navs[nav_name]):
                problems.append(f"{name}.{nav_name}: navigation target differs")
    for name, ctype in ours.complex.items():
        real = theirs.complex.get(name)
        if real is None:
            problems.append(f"complex type {name}: not in SAP's metadata")
            continue
        real_props = _props(real)
        for prop_name, prop in _props(ctype).items():
            problems += _check_property(f"{name}.{prop_name}", prop, real_props.get(prop_name))
    for name, entity_set in ours.sets.items():
        real = theirs.sets.get(name)
        if real is None or real.get("EntityType") != entity_set.get("EntityType"):
            problems.append(f"entity set {name}: not in SAP's metadata with type {entity_set.get('EntityType')}")
    for name, function in ours.functions.items():
        real = theirs.functions.get(name)
        if real is None:
            problems.append(f"function import {name}: not in SAP's metadata")
            continue
        for attr in ("ReturnType", "EntitySet", f"{M}HttpMethod"):
            if function.get(attr) != real.get(attr):
                problems.append(f"function import {name}: {attr} {function.get(attr)!r} != {real.get(attr)!r}")
        real_params = _props(real, "Parameter")
        for param_name, param in _props(function, "Parameter").items():
            problems += _check_property(f"{name}({param_name})", param, real_params.get(param_name))
    return problems


@pytest.fixture(scope="module")
def sap_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with SimulatorServer(str(tmp_path_factory.mktemp("sap-metadata") / "sap.db")) as server:
        yield server.url


@pytest.mark.parametrize("service", sorted(FILES))
def test_served_metadata_is_a_subset_of_sap_metadata(sap_url: str, service: str) -> None:
    response = httpx.get(f"{sap_url}/sap/opu/odata/sap/{service}/$metadata", auth=("PLANTBRIDGE", "secret"))
    assert response.status_code == 200
    ours = Edmx(response.content)
    theirs = Edmx((EDMX_DIR / FILES[service]).read_bytes())
    assert ours.types and ours.sets, "the simulator serves nothing for this service"
    assert compare(ours, theirs) == []


def test_the_comparison_notices_differences() -> None:
    """Guard against a vacuous comparison: a tampered document must be reported."""
    real = (EDMX_DIR / FILES["API_MAINTNOTIFICATION"]).read_bytes()
    tampered = real.replace(
        b'Name="MaintNotifExtReferenceNumber" Type="Edm.String" MaxLength="20"',
        b'Name="MaintNotifExtReferenceNumber" Type="Edm.String" MaxLength="30"',
        1,
    )
    assert tampered != real
    problems = compare(Edmx(tampered), Edmx(real))
    assert any("MaintNotifExtReferenceNumber" in p for p in problems)
