"""The scripting surface both machine simulators share (OPC UA server, MQTT/Sparkplug publisher).

A test or the demo scripts a machine by id: run, stop with a reason, count parts, set counters,
order and temperature. Each change goes to the machine's `MachineStatus`, then to the subclass's
`_publish` (OPC UA node writes, or an MQTT/Sparkplug message), whose answer is the new status.
"""

from __future__ import annotations

from typing import Any

from .model import MachineryItemState, MachineStatus, PackMLState, parse_state


class UnknownMachineError(KeyError):
    pass


class MachineScripting:
    """Mixin: the subclass holds `_statuses` (machine id -> status) and implements `_publish`."""

    _statuses: dict[str, MachineStatus]

    async def _publish(self, status: MachineStatus) -> dict[str, Any]:
        raise NotImplementedError

    def status(self, machine_id: str) -> dict[str, Any]:
        return self._status(machine_id).as_dict()

    def statuses(self) -> list[dict[str, Any]]:
        return [status.as_dict() for status in self._statuses.values()]

    async def run(self, machine_id: str) -> dict[str, Any]:
        """Start producing: Executing (PackML Execute), StopReason cleared."""
        status = self._status(machine_id)
        status.held_by_script = False
        status.run()
        return await self._publish(status)

    async def stop_machine(
        self, machine_id: str, reason: str = "", state: MachineryItemState | PackMLState | str | int | None = None
    ) -> dict[str, Any]:
        """Stop with a reason (``MAINT``, ``NO_MATERIAL``, ``BREAKDOWN``, ...); auto mode leaves it stopped
        until :meth:`run`. ``state`` overrides the state the reason implies."""
        status = self._status(machine_id)
        status.stop(reason, parse_state(state) if state is not None else None)
        status.held_by_script = True
        return await self._publish(status)

    async def set_state(self, machine_id: str, state: MachineryItemState | PackMLState | str | int) -> dict[str, Any]:
        """Enter a MachineryItemState (``Executing``...) or, mainly for packml machines, a PackML state
        (``PackMLState.HELD``, ``"Held"`` or ``11``). Leaves StopReason unless entering Executing."""
        status = self._status(machine_id)
        status.apply_state(parse_state(state))
        status.held_by_script = status.machinery_state is not MachineryItemState.EXECUTING
        return await self._publish(status)

    async def count(
        self, machine_id: str, good: int = 0, scrap: int = 0, *, cycle_time_ms: float | None = None
    ) -> dict[str, Any]:
        """Add produced parts; counters wrap to 0 after the spec's ``counter_max``."""
        status = self._status(machine_id)
        status.add_counts(good, scrap)
        if cycle_time_ms is not None:
            status.cycle_time_ms = float(cycle_time_ms)
        return await self._publish(status)

    async def set_counter(self, machine_id: str, good: int | None = None, scrap: int | None = None) -> dict[str, Any]:
        """Set counters to absolute values (e.g. just below ``counter_max`` to force a wrap-around)."""
        status = self._status(machine_id)
        status.set_counts(good, scrap)
        return await self._publish(status)

    async def reset_counters(self, machine_id: str) -> dict[str, Any]:
        status = self._status(machine_id)
        status.set_counts(0, 0)
        return await self._publish(status)

    async def set_order(self, machine_id: str, order: str, operation: str = "") -> dict[str, Any]:
        status = self._status(machine_id)
        status.order, status.operation = order, operation
        return await self._publish(status)

    async def set_temperature(self, machine_id: str, temperature: float) -> dict[str, Any]:
        status = self._status(machine_id)
        status.temperature = float(temperature)
        return await self._publish(status)

    def _status(self, machine_id: str) -> MachineStatus:
        try:
            return self._statuses[machine_id]
        except KeyError:
            raise UnknownMachineError(machine_id) from None
