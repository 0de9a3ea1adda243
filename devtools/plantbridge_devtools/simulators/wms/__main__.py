"""``python -m plantbridge_devtools.simulators.wms --port 8104 --db FILE [--api-key KEY]
[--api-key-header X-API-Key]``"""

from __future__ import annotations

import uvicorn

from plantbridge_devtools.simulators.common.cli import base_parser
from plantbridge_devtools.simulators.wms.app import DEFAULT_API_KEYS, create_app


def main(argv: list[str] | None = None) -> None:
    parser = base_parser("python -m plantbridge_devtools.simulators.wms", __doc__, 8104, DEFAULT_API_KEYS[0])
    args = parser.parse_args(argv)
    app = create_app(args.db, api_keys=args.api_key or DEFAULT_API_KEYS, api_key_header=args.api_key_header)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
