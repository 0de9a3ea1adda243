"""``plantbridge edge --config FILE``: run the edge agent until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from pathlib import Path

from plantbridge.edge.agent import EdgeAgent
from plantbridge.edge.config import ConfigError, load_config

_log = logging.getLogger(__name__)


async def run_edge(config_path: str | Path, *, stats_every_s: float = 60.0) -> None:
    """Load the config, run the agent, log its stats now and then, stop cleanly on SIGINT/SIGTERM."""
    config = load_config(config_path)
    # asyncua logs every publish result at INFO: keep the agent's own log readable.
    logging.getLogger("asyncua").setLevel(max(logging.WARNING, logging.getLogger().level))
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    agent = EdgeAgent(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await agent.start()
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=stats_every_s)
            stats = agent.stats()
            _log.info("edge stats %s", json.dumps(stats))
            if stats.get("dead"):
                _log.error("the edge outbox holds %d DEAD event(s) the gateway refused %d times: "
                           "`plantbridge edge-outbox list --config %s`, then `requeue`",
                           stats["dead"], config.gateway.max_refusals, config_path)
    finally:
        await agent.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="plantbridge edge", description="plantbridge OPC UA edge agent")
    parser.add_argument("--config", required=True, type=Path, help="the plant's edge YAML file")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(run_edge(args.config))
    except ConfigError as err:
        print(f"configuration error:\n{err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0
