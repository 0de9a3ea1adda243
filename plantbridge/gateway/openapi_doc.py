"""`python -m plantbridge.gateway.openapi_doc > docs/openapi.json`: the gateway's OpenAPI document as checked in.

No Temporal or store is needed: the app is built, not served. (Apart from openapi.py, which the routes
import: this module imports the app.)
"""

from __future__ import annotations

import sys

from plantbridge.gateway.app import create_app
from plantbridge.gateway.deps import GatewayDeps
from plantbridge.gateway.openapi import render


def main() -> None:
    app = create_app(GatewayDeps(client=None, db=None))  # type: ignore[arg-type]
    sys.stdout.write(render(app))


if __name__ == "__main__":
    main()
