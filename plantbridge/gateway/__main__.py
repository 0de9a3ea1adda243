"""`python -m plantbridge.gateway [--host H] [--port P] [--temporal A] [--store-url U] [--task-queue Q]`."""

from __future__ import annotations

import argparse
import logging

from plantbridge.gateway.server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="plantbridge-gateway", description="plantbridge HTTP gateway")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--temporal", help="Temporal frontend host:port (PLANTBRIDGE_TEMPORAL_ADDRESS)")
    parser.add_argument("--store-url", help="SQLAlchemy URL of the store (PLANTBRIDGE_STORE_URL)")
    parser.add_argument("--task-queue", help="the saga's task queue (PLANTBRIDGE_TASK_QUEUE)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(args.host, args.port, temporal=args.temporal, store_url=args.store_url, task_queue=args.task_queue)


if __name__ == "__main__":
    main()
