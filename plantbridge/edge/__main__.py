"""``python -m plantbridge.edge --config FILE``."""

from plantbridge.edge.cli import main

raise SystemExit(main())
