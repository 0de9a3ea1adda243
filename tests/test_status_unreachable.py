"""`plantbridge status` when Temporal or the store does not answer: the failure named, what the other
one knows still printed, a non-zero exit (no traceback)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from plantbridge.store import Database, sqlite_url
from plantbridge.workers.cli import app
from plantbridge.workers.settings import Settings
from plantbridge.workers.status import print_status
from tests.support import free_port


async def test_temporal_unreachable_still_shows_the_stores_part(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "store.db")
    await (await Database(url).init()).close()
    console = Console(record=True, width=200)
    ok = await print_status(Settings(temporal_address=f"127.0.0.1:{free_port()}", store_url=url), None, console)
    text = console.export_text()
    assert not ok
    assert "Temporal at 127.0.0.1:" in text and "does not answer" in text
    assert "plantbridge status" in text  # the table (store part) is still printed


def test_store_unreachable_exits_1_naming_it() -> None:
    port = free_port()
    result = CliRunner().invoke(app, ["status", "--temporal", f"127.0.0.1:{free_port()}", "--store-url",
                                      f"postgresql+asyncpg://pb:secret@127.0.0.1:{port}/pb"])
    assert result.exit_code == 1, result.output
    output = " ".join(result.output.split())
    assert f"the store postgresql+asyncpg://pb:***@127.0.0.1:{port}/pb does not answer" in output
    assert "secret" not in result.output and "Traceback" not in result.output
