"""`plantbridge dev|demo|bench` come from plantbridge-devtools through the entry point group
`plantbridge.cli`; without it installed each says how to install it (exit 2, no traceback)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("plantbridge_devtools", reason="make install installs plantbridge-devtools beside plantbridge")

# A production install, imitated: the same interpreter with no `plantbridge.cli` entry points
# (plantbridge_devtools is importable here, but the CLI finds plugins through entry points only).
WITHOUT_PLUGINS = textwrap.dedent("""
    import importlib.metadata as md, sys
    real = md.entry_points
    md.entry_points = lambda **kw: [] if kw.get("group") == "plantbridge.cli" else real(**kw)
    from plantbridge.workers.cli import app
    sys.argv = ["plantbridge", *sys.argv[1:]]
    app()
""")


def plantbridge(*args: str, plugins: bool = True) -> subprocess.CompletedProcess[str]:
    code = ["-m", "plantbridge.workers.cli"] if plugins else ["-c", WITHOUT_PLUGINS]
    return subprocess.run([sys.executable, *code, *args], capture_output=True, text=True, timeout=120, check=False)


def test_the_dev_commands_come_from_the_devtools_entry_point() -> None:
    from importlib.metadata import entry_points

    assert [e.value for e in entry_points(group="plantbridge.cli")] == ["plantbridge_devtools.cli:register"]
    result = plantbridge("demo", "--help")
    assert result.returncode == 0 and "--orders" in result.stdout


@pytest.mark.parametrize("command", ["dev", "demo", "bench"])
def test_without_devtools_the_command_says_how_to_install_it(command: str) -> None:
    result = plantbridge(command, "--orders", "2", plugins=False)
    assert result.returncode == 2, result.stderr
    assert "plantbridge-devtools" in result.stderr and "pip install -e ./devtools" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_without_devtools_the_production_commands_still_work() -> None:
    result = plantbridge("--help", plugins=False)
    assert result.returncode == 0
    for command in ("worker", "gateway", "edge", "status", "orders", "demo"):
        assert command in result.stdout
