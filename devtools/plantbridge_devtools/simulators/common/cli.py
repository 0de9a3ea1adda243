"""Command-line options every plant-system simulator shares."""

from __future__ import annotations

import argparse


def base_parser(prog: str, description: str | None, port: int, default_key: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--db", required=True, help="SQLite file holding the simulator's state")
    parser.add_argument("--api-key", action="append", default=[], metavar="KEY",
                        help=f"accepted API key (repeatable; default {default_key})")
    parser.add_argument("--api-key-header", default="X-API-Key", help="header carrying the API key")
    parser.add_argument("--log-level", default="info")
    return parser
