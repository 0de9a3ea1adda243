"""The transition table, the README's diagram generated from it, and the UI's static summary."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from plantbridge.canonical.policy import PlantPolicy
from plantbridge.canonical.saga import SagaState
from plantbridge.canonical.state_diagram import render
from plantbridge.canonical.states import END_STATES, TRANSITION_TABLE, TRANSITIONS, OrderState, mermaid
from plantbridge.workflows.details import current_details, static_summary
from tests.conftest import new_order

README = Path(__file__).parents[1] / "README.md"


def test_readme_diagram_is_the_table() -> None:
    text = README.read_text()
    assert render(text) == text, "README.md's state diagram differs: python -m plantbridge.canonical.state_diagram"


def test_diagram_draws_every_move() -> None:
    diagram = mermaid()
    for t in TRANSITION_TABLE:
        assert f"    {t.source.value} --> {t.target.value}" in diagram


def test_table_shape() -> None:
    assert len({(t.source, t.target) for t in TRANSITION_TABLE}) == len(TRANSITION_TABLE)
    assert all(not TRANSITIONS[s] for s in END_STATES)
    reachable = {OrderState.PLANNED}
    for _ in OrderState:
        reachable |= {t for s in reachable for t in TRANSITIONS[s]}
    assert reachable == set(OrderState)
    # released -> completed exists only for the ERP ending the order (TECO, issue 14), never for the plant.
    [teco] = [t for t in TRANSITION_TABLE if (t.source, t.target) == (OrderState.RELEASED, OrderState.COMPLETED)]
    assert "TECO" in teco.why
    # A hold returns to the state it interrupted.
    assert TRANSITIONS[OrderState.QUALITY_HOLD] >= {OrderState.RELEASED, OrderState.IN_PROGRESS,
                                                   OrderState.PARTIALLY_CONFIRMED, OrderState.COMPLETED}


def test_static_summary_reads_at_a_glance() -> None:
    order = new_order(number="1895938", material="D2O_EVOGUARD_CARTRIDGE_30IN_X",
                      quantity={"quantity": "1.000", "uom": "EA"}, erp_system="sap_s4")
    assert static_summary(order) == "1895938 · plant 1000 · D2O_EVOGUARD_CARTRIDGE_… · 1 EA · sap_s4"
    assert static_summary(new_order(number="77", quantity={"quantity": "100", "uom": "H87"})).endswith(
        "· 100 H87 · reference")
    assert Decimal("1.000").normalize() == Decimal("1")


def test_current_details_tables_render_as_markdown() -> None:
    text = current_details(SagaState(order=new_order(), policy=PlantPolicy()))
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("|") and (i == 0 or not lines[i - 1].startswith("|")):
            assert lines[i - 1] == "", f"a table needs a blank line before it: {lines[i - 1]!r}"
            assert set(lines[i + 1]) <= set("|-: "), "a table needs its header separator row"
        if line.startswith("- ") and not lines[i - 1].startswith("- "):
            assert lines[i - 1] == "", f"a list needs a blank line before it: {lines[i - 1]!r}"
