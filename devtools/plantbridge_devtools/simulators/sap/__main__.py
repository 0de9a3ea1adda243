"""``python -m plantbridge_devtools.simulators.sap --host 127.0.0.1 --port 8101 --db FILE [--webhook URL]
[--webhook-header 'Authorization: Bearer x'] [--client 100] [--user NAME:PASSWORD]``"""

from __future__ import annotations

import argparse

import uvicorn

from plantbridge_devtools.simulators.sap.app import create_app


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {text!r}")
    return name.strip(), value.strip()


def _user(text: str) -> tuple[str, str]:
    name, sep, password = text.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected 'NAME:PASSWORD', got {text!r}")
    return name, password


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m plantbridge_devtools.simulators.sap", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--db", required=True, help="SQLite file holding the simulator's state")
    parser.add_argument("--webhook", default=None, help="URL receiving business events (CloudEvents)")
    parser.add_argument("--webhook-header", action="append", type=_header, default=[], metavar="'Name: value'")
    parser.add_argument("--client", default="100", help="SAP client (Mandant)")
    parser.add_argument("--webhook-retry-for", type=float, default=0.0, metavar="SECONDS",
                        help="keep delivering an event this long (as an Event Mesh queue; default: 3 retries)")
    parser.add_argument(
        "--user",
        action="append",
        type=_user,
        default=[],
        metavar="NAME:PASSWORD",
        help="accepted basic-auth user (repeatable; default PLANTBRIDGE:secret)",
    )
    parser.add_argument("--refuse-duplicates", action="store_true", default=None,
                        help="refuse a second posting with the same external key (ZPB/001, ZPB/009); by default it "
                             "is taken, as a real system may (env PLANTBRIDGE_SAP_SIM_REFUSE_DUPLICATES=1)")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    app = create_app(
        args.db,
        webhook_url=args.webhook,
        webhook_headers=dict(args.webhook_header),
        client=args.client,
        users=dict(args.user) or None,
        refuse_duplicates=args.refuse_duplicates,
        webhook_retry_for_s=args.webhook_retry_for,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
