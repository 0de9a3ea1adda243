"""`plantbridge codec-server` and `plantbridge codec-key` (mounted on the main CLI)."""

from __future__ import annotations

import asyncio
import logging
import os

import typer
from rich.console import Console

from plantbridge.security.codec import CodecKeyError, EncryptionCodec, keys_from_env, new_key
from plantbridge.security.codec_server import DEFAULT_PORT, serve
from plantbridge.security.oidc import OidcConfigError, OidcSettings, OidcVerifier
from plantbridge.workers.settings import Settings

err_console = Console(stderr=True)
DEFAULT_UI_ORIGINS = ["http://localhost:8233", "http://127.0.0.1:8233"]
PATH_SECRET_ENV = "PLANTBRIDGE_CODEC_PATH_SECRET"


def codec_server(
    host: str = typer.Option("127.0.0.1", help="bind address"),
    port: int = typer.Option(DEFAULT_PORT, help="port"),
    ui_origin: list[str] = typer.Option(None, "--ui-origin",
                                        help="the Temporal UI's origin, for CORS (repeat; default localhost:8233)"),
    store_url: str = typer.Option(None, help="SQLAlchemy URL of the store holding API keys (PLANTBRIDGE_STORE_URL)"),
) -> None:
    """Temporal codec server (/encode, /decode) for the Temporal UI: supervisors only.

    Keys from PLANTBRIDGE_CODEC_KEYS or PLANTBRIDGE_CODEC_KEYS_FILE. Supervisor API keys; with
    PLANTBRIDGE_CODEC_OIDC_ISSUER (and _AUDIENCE, _JWKS_URL or _JWKS_FILE, _ROLE_CLAIM, _SUPERVISOR)
    the UI's OIDC tokens; PLANTBRIDGE_CODEC_PATH_SECRET additionally admits requests under /<secret>/
    (a local UI that cannot send a token).
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        keys = keys_from_env()
    except CodecKeyError as err:
        err_console.print(f"[bold red]configuration error[/]\n{err}", highlight=False)
        raise typer.Exit(2) from None
    if not keys:
        err_console.print("[bold red]configuration error[/]\nset PLANTBRIDGE_CODEC_KEYS or "
                          "PLANTBRIDGE_CODEC_KEYS_FILE (see `plantbridge codec-key`)", highlight=False)
        raise typer.Exit(2)
    try:
        oidc = OidcSettings.from_env()
    except OidcConfigError as err:
        err_console.print(f"[bold red]configuration error[/]\n{err}", highlight=False)
        raise typer.Exit(2) from None
    settings = Settings.from_env(store_url=store_url)
    asyncio.run(serve(EncryptionCodec(keys), settings.store_url, host=host, port=port,
                      ui_origins=ui_origin or DEFAULT_UI_ORIGINS,
                      path_secret=os.environ.get(PATH_SECRET_ENV) or None,
                      oidc=OidcVerifier(oidc) if oidc else None))


def codec_key(key_id: str = typer.Argument(..., help="the new key's id, e.g. k2 or 2026-11")) -> None:
    """Print a fresh AES-256 key as `id:base64`; put it FIRST in PLANTBRIDGE_CODEC_KEYS to rotate."""
    try:
        typer.echo(new_key(key_id))
    except CodecKeyError as err:
        err_console.print(str(err), highlight=False)
        raise typer.Exit(2) from None
