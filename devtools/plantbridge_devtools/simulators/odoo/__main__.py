"""``python -m plantbridge_devtools.simulators.odoo --port 8106 --db FILE [--version 19.0] [--database odoo]
[--login admin] [--password admin] [--api-key KEY] [--webhook URL]``"""

from __future__ import annotations

import argparse

import uvicorn

from plantbridge_devtools.simulators.odoo.app import DEFAULT_KEY, VERSIONS, create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m plantbridge_devtools.simulators.odoo", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8106)
    parser.add_argument("--db", required=True, help="SQLite file holding the simulator's state")
    parser.add_argument("--version", default="19.0", choices=VERSIONS)
    parser.add_argument("--database", default="odoo")
    parser.add_argument("--login", default="admin")
    parser.add_argument("--password", default="admin")
    parser.add_argument("--api-key", action="append", default=[], help=f"accepted API key (default {DEFAULT_KEY})")
    parser.add_argument("--webhook", default=None, help="URL of the automation rule's webhook (MO confirmed)")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    app = create_app(args.db, version=args.version, database=args.database, login=args.login,
                     password=args.password, api_keys=args.api_key or None, webhook_url=args.webhook)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
