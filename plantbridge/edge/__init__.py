"""The edge agent: OPC UA machines -> downtime and count events (store-and-forward) + telemetry rollups.

Imports ``plantbridge.canonical`` only (ARCHITECTURE §2).
"""

from plantbridge.edge.agent import EdgeAgent
from plantbridge.edge.config import ConfigError, EdgeConfig, load_config, parse_config
from plantbridge.edge.states import EquipmentState

__all__ = ["ConfigError", "EdgeAgent", "EdgeConfig", "EquipmentState", "load_config", "parse_config"]
