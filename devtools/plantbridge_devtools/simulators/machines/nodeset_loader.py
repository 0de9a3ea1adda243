"""Loading the OPC Foundation NodeSets (``nodesets/``) into an asyncua server, in dependency order.

DI -> IA -> Machinery are required; PackML is optional (when it fails the PackML machines keep their
plain ``PackMLState`` variable and lose the standard PackML object). Each load is reported in a
:class:`NodeSetReport` with asyncua's import warnings, so nothing is dropped silently.

asyncua 2.1 issue worked around here: ``Opc.Ua.Di.NodeSet2.xml`` 1.05.0 holds nine ``UAObject`` nodes
with ``DesignToolOnly="true"`` and no parent; asyncua ignores the attribute, its server refuses those
nodes (``BadParentNodeIdInvalid``) and a strict import stops there. OPC 10000-6 F.7 says such nodes do
not appear in the AddressSpace, so they are removed from the XML text handed to ``import_xml`` (the
file on disk stays unchanged).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from asyncua.server.server import Server

NODESET_DIR = Path(__file__).parent / "nodesets"

DI_URI = "http://opcfoundation.org/UA/DI/"
IA_URI = "http://opcfoundation.org/UA/IA/"
MACHINERY_URI = "http://opcfoundation.org/UA/Machinery/"
PACKML_URI = "http://opcfoundation.org/UA/PackML/"

_log = logging.getLogger(__name__)

_DESIGN_TOOL_ONLY = re.compile(
    r'[ \t]*<(UAObject|UAVariable)\b(?P<attrs>[^>]*\bDesignToolOnly="true"[^>]*?)(?:/>|>.*?</\1>)\s*\n?',
    re.DOTALL,
)
_NODE_ID = re.compile(r'\bNodeId="([^"]+)"')


@dataclass(frozen=True)
class NodeSetFile:
    file: str
    model_uri: str
    required: bool


# dependency order: Machinery requires DI and IA (IA requires DI); PackML only the base namespace
NODESETS: tuple[NodeSetFile, ...] = (
    NodeSetFile("Opc.Ua.Di.NodeSet2.xml", DI_URI, True),
    NodeSetFile("Opc.Ua.IA.NodeSet2.xml", IA_URI, True),
    NodeSetFile("Opc.Ua.Machinery.NodeSet2.xml", MACHINERY_URI, True),
    NodeSetFile("Opc.Ua.PackML.NodeSet2.xml", PACKML_URI, False),
)


@dataclass
class NodeSetReport:
    file: str
    model_uri: str
    loaded: bool = False
    nodes: int = 0
    seconds: float = 0.0
    removed_design_tool_only: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    def summary(self) -> str:
        state = f"loaded {self.nodes} nodes" if self.loaded else f"FAILED: {self.error}"
        extra = ""
        if self.removed_design_tool_only:
            extra += f"; removed {len(self.removed_design_tool_only)} DesignToolOnly nodes"
        if self.warnings:
            extra += f"; {len(self.warnings)} importer warnings"
        return f"{self.file}: {state} in {self.seconds:.2f}s{extra}"


@cache
def _prepared_xml(path: Path) -> tuple[str, tuple[str, ...]]:
    """The NodeSet text without DesignToolOnly instances, and the NodeIds removed."""
    text = path.read_text(encoding="utf-8")
    removed: list[str] = []

    def _drop(match: re.Match[str]) -> str:
        node_id = _NODE_ID.search(match.group("attrs"))
        removed.append(node_id.group(1) if node_id else "?")
        return ""

    return _DESIGN_TOOL_ONLY.sub(_drop, text), tuple(removed)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage()[:400])


async def load_nodesets(server: Server, directory: Path = NODESET_DIR) -> list[NodeSetReport]:
    """Import the NodeSets in dependency order; raise if a required one fails."""
    reports: list[NodeSetReport] = []
    importer_log = logging.getLogger("asyncua.common.xmlimporter")
    for nodeset in NODESETS:
        report = NodeSetReport(nodeset.file, nodeset.model_uri)
        reports.append(report)
        text, removed = _prepared_xml(directory / nodeset.file)
        report.removed_design_tool_only = list(removed)
        collector = _Collect()
        importer_log.addHandler(collector)
        propagate, importer_log.propagate = importer_log.propagate, False
        started = time.perf_counter()
        try:
            nodes = await server.import_xml(xmlstring=text)
            report.loaded, report.nodes = True, len(nodes)
        except Exception as exc:  # asyncua raises UaError subclasses and plain exceptions alike
            report.error = f"{type(exc).__name__}: {exc}"
        finally:
            report.seconds = time.perf_counter() - started
            importer_log.removeHandler(collector)
            importer_log.propagate = propagate
            report.warnings = collector.messages
        if report.loaded:
            _log.debug("%s", report.summary())
            for message in report.warnings:
                _log.debug("  %s importer warning: %s", nodeset.file, message)
        elif nodeset.required:
            raise RuntimeError(f"required NodeSet did not load: {report.summary()}")
        else:
            _log.error("%s (continuing without it)", report.summary())
    return reports
