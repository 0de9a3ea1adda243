"""`python -m plantbridge.gateway.contracts_doc [docs/schemas]`: write the published contracts' JSON Schemas.

One file per contract version, `v<version>/<name>.json`. It refuses (exit 1, nothing written) when a
file already published would change incompatibly (gateway/schema_compat.py) or when a published
version has left the registry: publish a new version instead (gateway/contracts.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from plantbridge.gateway.contracts import CONTRACTS, Contract, relative_file
from plantbridge.gateway.schema_compat import incompatibilities

DEFAULT_DIR = Path("docs/schemas")


def render(contract: Contract) -> str:
    return json.dumps(contract.schema(), indent=2, ensure_ascii=False) + "\n"


def published(root: Path) -> dict[str, dict[str, Any]]:
    """The checked-in schemas by relative path (`v1/plant-event.json`)."""
    return {p.relative_to(root).as_posix(): json.loads(p.read_text()) for p in sorted(root.glob("v*/*.json"))}


def breaking_changes(root: Path) -> list[str]:
    """What the models would break in the published schemas under `root` (empty: nothing)."""
    problems: list[str] = []
    known = {relative_file(c): c for c in CONTRACTS}
    for rel, old in published(root).items():
        contract = known.get(rel)
        if contract is None:
            problems.append(f"{rel}: published, but no longer in the registry (gateway/contracts.py)")
            continue
        found = incompatibilities(old, contract.schema(), inbound=contract.direction == "inbound")
        problems += [f"{contract.name} v{contract.version}: {p}" for p in found]
    return problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]) if args else DEFAULT_DIR
    problems = breaking_changes(root) if root.exists() else []
    if problems:
        sys.stderr.write("incompatible with the published schemas (publish a new version instead):\n  "
                         + "\n  ".join(problems) + "\n")
        return 1
    for contract in CONTRACTS:
        path = root / relative_file(contract)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = render(contract)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
