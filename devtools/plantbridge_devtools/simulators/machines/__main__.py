"""``python -m plantbridge_devtools.simulators.machines`` — run the machine simulator as its own process.

    python -m plantbridge_devtools.simulators.machines \\
        --endpoint opc.tcp://127.0.0.1:4840/plantbridge/ \\
        --machines M01:ASSY-01:machinery,M02:PACK-01:packml --auto 2 --control-port 8105

Once listening it prints one JSON line to stdout: ``{"event": "ready", "opcua": ..., "control": ...,
"namespace_uri": ..., "namespace_index": ..., "machines": [...]}``. SIGINT/SIGTERM stop it cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from pathlib import Path

from .control import ControlServer
from .model import DEFAULT_MACHINES, generate_specs, parse_machines
from .server import DEFAULT_ENDPOINT, MachineSimulator

DEFAULT_CONTROL_PORT = 8105


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m plantbridge_devtools.simulators.machines", description="OPC UA machine simulator"
    )
    parser.add_argument("--endpoint", default=DEFAULT_ENDPOINT)
    parser.add_argument(
        "--machines",
        default=",".join(f"{s.id}:{s.work_center}:{s.kind.value}" for s in DEFAULT_MACHINES),
        help="comma-separated ID[:WORK_CENTER[:KIND[:NAME]]], KIND machinery|packml",
    )
    parser.add_argument("--generate", type=int, metavar="N", help="N generated machines instead of --machines")
    parser.add_argument("--packml-every", type=int, default=0, help="with --generate: every k-th is packml")
    parser.add_argument("--auto", type=float, metavar="HZ", default=0.0, help="auto mode tick rate (0: off)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--profile", choices=["realistic", "stress"], default="realistic")
    parser.add_argument("--control-host", default="127.0.0.1")
    parser.add_argument(
        "--control-port", type=int, default=DEFAULT_CONTROL_PORT, help="HTTP control API port (0: any free)"
    )
    parser.add_argument("--no-control", action="store_true", help="no HTTP control API")
    parser.add_argument("--security", choices=["none", "basic256sha256"], default="none")
    parser.add_argument("--cert-dir", type=Path, help="the server's certificate and key (generated when missing)")
    parser.add_argument("--trusted-dir", type=Path, help="client certificates the server trusts (basic256sha256)")
    parser.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD")
    parser.add_argument("--log-level", default="WARNING")
    return parser


async def serve(args: argparse.Namespace) -> None:
    specs = (
        generate_specs(args.generate, packml_every=args.packml_every)
        if args.generate
        else parse_machines(args.machines)
    )
    users = dict(item.split(":", 1) for item in args.user) if args.user else None
    sim = MachineSimulator(args.endpoint, specs, security=args.security, cert_dir=args.cert_dir, users=users,
                           trusted_dir=args.trusted_dir)
    control = None if args.no_control else ControlServer(sim, args.control_host, args.control_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await sim.start()
    try:
        if control is not None:
            await control.start()
        if args.auto > 0:
            await sim.start_auto(args.auto, args.seed, profile=args.profile)
        ready = {
            "event": "ready",
            "opcua": sim.endpoint,
            "control": control.url if control else None,
            "namespace_uri": sim.namespace_uri,
            "namespace_index": sim.namespace_index,
            "security": sim.security,
            "cert_dir": str(sim.cert_dir) if sim.cert_dir else None,
            "machines": sim.machine_ids,
        }
        print(json.dumps(ready), flush=True)
        await stop.wait()
    finally:
        if control is not None:
            await control.stop()
        await sim.stop()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(args))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
