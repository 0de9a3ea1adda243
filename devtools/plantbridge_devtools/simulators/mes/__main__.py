"""``python -m plantbridge_devtools.simulators.mes --port 8102 --db FILE [--plant 1000] [--outbound URL
--outbound-token T] [--api-key KEY] [--api-key-header X-API-Key]``"""

from __future__ import annotations

import uvicorn

from plantbridge_devtools.simulators.common.cli import base_parser
from plantbridge_devtools.simulators.mes.app import DEFAULT_API_KEYS, create_app


def main(argv: list[str] | None = None) -> None:
    parser = base_parser("python -m plantbridge_devtools.simulators.mes", __doc__, 8102, DEFAULT_API_KEYS[0])
    parser.add_argument("--plant", default="1000", help="plant the MES runs (default 1000)")
    parser.add_argument("--outbound", default=None, help="URL receiving plant events (e.g. the gateway)")
    parser.add_argument("--outbound-token", default=None, help="bearer token sent with plant events")
    args = parser.parse_args(argv)
    app = create_app(
        args.db, plant=args.plant, outbound_url=args.outbound, outbound_token=args.outbound_token,
        api_keys=args.api_key or DEFAULT_API_KEYS, api_key_header=args.api_key_header,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
