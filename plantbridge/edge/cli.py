"""``plantbridge edge --config FILE``: run the edge agent until SIGINT/SIGTERM;
``plantbridge edge pki init --config FILE``: its OPC UA certificate and trust-list folders."""

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
from plantbridge.edge.pki import edge_pki

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


def init_pki(config_path: str | Path, *, hostnames: list[str] | None = None, force: bool = False) -> str:
    """Create the PKI folders and the agent's certificate (kept when a usable one exists, unless
    ``force``); returns what an operator needs to know next."""
    config = load_config(config_path)
    pki = edge_pki(config)
    result = pki.init(config.application_uri, hostnames, force=force)
    done = "created" if result.created else "kept (still valid; --force makes a new one)"
    return "\n".join([
        f"OPC UA application URI {config.application_uri}",
        f"certificate {result.cert} {done}",
        f"  SHA-1 thumbprint {result.thumbprint}",
        f"private key {result.key} (keep it on this machine)",
        f"trust list {pki.trusted}/  revocation lists {pki.crl}/  rejected {pki.rejected}/",
        "next: give each OPC UA server the certificate above for its trust list; put each server's certificate",
        f"into {pki.trusted}/ (or start the agent: a server it does not trust is refused and its certificate",
        f"written to {pki.rejected}/ — check the thumbprint with the server's operator, then move it).",
    ])


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
