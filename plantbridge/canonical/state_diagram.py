"""Write the order-state diagram into README.md from the transition table.

`python -m plantbridge.canonical.state_diagram [README.md]` replaces what stands between the
markers below; `tests/test_states.py` fails when the README is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

from plantbridge.canonical.states import mermaid

BEGIN = "<!-- state-diagram: generated from plantbridge/canonical/states.py; do not edit -->"
END = "<!-- /state-diagram -->"


def render(text: str) -> str:
    """`text` with the block between the markers replaced by the table's diagram."""
    head, sep, rest = text.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise ValueError(f"README has no {BEGIN} … {END} block")
    return f"{head}{BEGIN}\n{mermaid()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0] if args else "README.md")
    old = path.read_text()
    new = render(old)
    if new != old:
        path.write_text(new)
        print(f"{path}: state diagram updated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
