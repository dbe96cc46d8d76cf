"""A network: buses, the ECUs on them, and one nanosecond timeline they all share.

Emulated ECUs run in lockstep with the buses. While an ECU is awake the network advances
in steps no longer than the shortest possible frame on its fastest bus (29 bit times: the
arbitration part of the shortest CAN FD frame), stopping early at every bus event. A frame
an ECU asks to send during a step therefore always ends after the step, so no ECU ever runs
past a frame it should have received; and a TX request carries the ECU's own time, so
arbitration considers exactly the frames requested by its instant. While every ECU sleeps
in WFI the network jumps straight to the next bus event or ECU wake-up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from harness.clock import VirtualClock
from harness.errors import VirtualTimeout
from harness.network.can import CanBus

if TYPE_CHECKING:
    from harness.machine import Machine

NS_PER_S = 1_000_000_000
STEP_BITS = 29


class Network:
    def __init__(self, start_ns: int = 0) -> None:
        self.clock = VirtualClock(NS_PER_S)
        self.clock.cycles = start_ns
        self.buses: dict[str, CanBus] = {}
        self.ecus: dict[str, Machine] = {}
        self.step_ns = STEP_BITS * NS_PER_S // 1_000_000

    def can_bus(self, name: str, bitrate: int = 500_000, data_bitrate: int | None = None) -> CanBus:
        if name in self.buses:
            raise ValueError(f"the network already has a bus named {name!r}")
        bus = CanBus(name, self.clock, bitrate, data_bitrate)
        self.buses[name] = bus
        self.step_ns = STEP_BITS * NS_PER_S // max(b.bitrate for b in self.buses.values())
        return bus

    def bus(self, name: str) -> CanBus:
        try:
            return self.buses[name]
        except KeyError:
            known = ", ".join(self.buses) or "none"
            raise KeyError(f"no bus named {name!r} on this network (buses: {known})") from None

    def add_ecu(
        self, name: str, machine: Machine, can0: str | None = "can0", can1: str | None = None
    ) -> Machine:
        """Put `machine`'s CAN controllers on buses (MCAN0 on `can0`, MCAN1 on `can1`)."""
        if name in self.ecus:
            raise ValueError(f"the network already has an ECU named {name!r}")
        if machine.now_ns != self.now_ns:
            raise ValueError(f"ECU {name} is at {machine.now_ns} ns, the network at "
                             f"{self.now_ns} ns: add ECUs before either runs")  # fmt: skip
        for controller, bus_name in (("MCAN0", can0), ("MCAN1", can1)):
            if bus_name is None:
                continue
            bus = self.bus(bus_name)
            node = machine.peripheral(controller)
            node.name = f"{name}.{controller}"
            bus.attach(node)  # type: ignore[arg-type]  # an Mcan is a CanNode
            node.bus_request.append(bus.request)  # type: ignore[attr-defined]
            node.bus_rates = (bus.name, bus.bitrate, bus.data_bitrate)  # type: ignore[attr-defined]
        self.ecus[name] = machine
        return machine

    @property
    def now_ns(self) -> int:
        return self.clock.cycles

    def next_event_ns(self) -> int | None:
        """When something may next happen: a bus event, an ECU's own next event if it
        sleeps, or the next step while an ECU is awake. None: nothing ever will."""
        now = self.now_ns
        nxt = self.clock.next_deadline()
        for machine in self.ecus.values():
            if not machine.sleeping or machine.nvic.pending:
                t = now + self.step_ns  # awake: it may ask to send at any time
            elif (cycle := machine.clock.next_deadline()) is not None:
                t = -(-cycle * NS_PER_S // machine.clock.hz)  # its wake-up, in ns
            else:
                continue
            nxt = t if nxt is None or t < nxt else nxt
        return None if nxt is None else max(nxt, now)

    def _move_to(self, target_ns: int) -> None:
        """Run every ECU to `target_ns`, then the buses' events up to it, in time order.
        Nothing an ECU does before `target_ns` can end a frame before it (see above)."""
        for machine in self.ecus.values():
            machine.run_to_cycle(target_ns * machine.clock.hz // NS_PER_S)
        self.clock.advance_to(target_ns)

    def advance_to(self, end_ns: int) -> None:
        while True:
            nxt = self.next_event_ns()
            target = end_ns if nxt is None else min(end_ns, nxt)
            self._move_to(target)
            if target >= end_ns:
                return

    def run_for(self, *, s: float = 0, ms: float = 0, us: float = 0, ns: int = 0) -> None:
        self.advance_to(self.now_ns + ns + self.clock.cycles_for(s=s, ms=ms, us=us))

    def step(self, end_ns: int | None = None) -> bool:
        """Advance to the next moment something may happen, never past `end_ns`. False when
        nothing can happen before `end_ns` (time then stands at `end_ns`, if one was given)."""
        nxt = self.next_event_ns()
        if nxt is None or (end_ns is not None and nxt > end_ns):
            if end_ns is not None:
                self.advance_to(end_ns)
            return False
        self._move_to(nxt)
        return True

    def run_until(self, predicate: Callable[[], bool], *, timeout_ms: float) -> float:
        """Advance step by step until `predicate()` holds; returns the time in ms."""
        end = self.now_ns + self.clock.cycles_for(ms=timeout_ms)
        while not predicate():
            if not self.step(end) and not predicate():
                raise VirtualTimeout(f"condition not met within {timeout_ms} ms of virtual time")
        return self.now_ns / 1e6
