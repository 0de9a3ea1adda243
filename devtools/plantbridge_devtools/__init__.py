"""plantbridge's development tools: simulators of the foreign systems, the dev stack, demo and bench.

Not part of the production package: `plantbridge` never imports this package except through the CLI
plugin hook (entry point group ``plantbridge.cli``). The simulators import nothing of plantbridge (they
play foreign systems); the stack, demo and bench drive plantbridge and may import it.
"""
