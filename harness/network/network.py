"""A network: buses, the ECUs on them, and one nanosecond timeline they all share.

Emulated ECUs run in lockstep with the buses. While an ECU is awake the network advances
in steps no longer than the shortest possible frame on its fastest bus (29 bit times: the
arbitration part of the shortest CAN FD frame), stopping early at every bus event. A frame
an ECU asks to send during a step therefore always ends after the step, so no ECU ever runs
past a frame it should have received; and a TX request carries the ECU's own time, so
arbitration considers exactly the frames requested by its instant. While every ECU sleeps
in WFI the network jumps straight to the next bus event or ECU wake-up.

With the native paths (the default) the buses and this lockstep run in C (network/bus.c);
the Python code here is the reference, run with `HARNESS_NATIVE=0` or whenever an ECU does
not run natively.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from harness import nativelib
from harness.clock import VirtualClock
from harness.errors import HarnessError, VirtualTimeout
from harness.network.can import CanBus
from harness.network.can_native import NativeCanBus, NativeNetClock
from harness.network.lin import LinBus
from harness.network.ports import CanPort, LinPort, Lockstep

if TYPE_CHECKING:
    from harness.machine import Machine

NS_PER_S = 1_000_000_000
STEP_BITS = 29


class Network:
    def __init__(self, start_ns: int = 0) -> None:
        # Native: the CAN buses run in C on this clock (HARNESS_NATIVE=0: the Python buses)
        self._native = NativeNetClock(NS_PER_S) if nativelib.enabled() else None
        self.clock = self._native.clock if self._native else VirtualClock(NS_PER_S)
        self.clock.cycles = start_ns
        self.buses: dict[str, CanBus] = {}
        self.lin_buses: dict[str, LinBus] = {}
        self.ecus: dict[str, Machine] = {}
        self.step_ns = STEP_BITS * NS_PER_S // 1_000_000
        self._stop = False

    def can_bus(self, name: str, bitrate: int = 500_000, data_bitrate: int | None = None) -> CanBus:
        if name in self.buses or name in self.lin_buses:
            raise ValueError(f"the network already has a bus named {name!r}")
        bus = (NativeCanBus(name, self._native, bitrate, data_bitrate) if self._native
               else CanBus(name, self.clock, bitrate, data_bitrate))  # fmt: skip
        self.buses[name] = bus
        self.step_ns = STEP_BITS * NS_PER_S // max(b.bitrate for b in self.buses.values())
        return bus

    def lin_bus(self, name: str, bitrate: int = 19_200) -> LinBus:
        """A LIN cluster on this network's timeline; ECUs join it through a USART
        (`attach(port(ecu, "USART2"), name)`)."""
        if name in self.buses or name in self.lin_buses:
            raise ValueError(f"the network already has a bus named {name!r}")
        bus = LinBus(name, self.clock, bitrate)
        self.lin_buses[name] = bus
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
        """Run `machine` on this network and put its CAN controllers on buses (MCAN0 on
        `can0`, MCAN1 on `can1`; `attach` does the same for any controller)."""
        if name in self.ecus:
            raise ValueError(f"the network already has an ECU named {name!r}")
        if machine.now_ns != self.now_ns:
            raise ValueError(f"ECU {name} is at {machine.now_ns} ns, the network at "
                             f"{self.now_ns} ns: add ECUs before either runs")  # fmt: skip
        self.ecus[name] = machine
        if self._native:
            self._native.add_machine(machine)
        for controller, bus_name in (("MCAN0", can0), ("MCAN1", can1)):
            if bus_name is not None:
                self.attach(self.port(name, controller), bus_name)
        return machine

    def port(self, ecu: str, controller: str) -> CanPort | LinPort:
        """An ECU's controller (a CAN controller, e.g. "MCAN0", or a USART) as a bus port,
        named `ECU.MCAN0` on the bus."""
        if ecu not in self.ecus:
            raise KeyError(f"no ECU named {ecu!r} on this network (ECUs: "
                           f"{', '.join(self.ecus) or 'none'})")  # fmt: skip
        port = self.ecus[ecu].peripheral(controller)
        if not isinstance(port, (CanPort, LinPort)):
            raise TypeError(f"{ecu}.{controller} is neither a CAN controller nor a USART")
        port.name = f"{ecu}.{controller}"
        return port

    def can_port(self, ecu: str, controller: str) -> CanPort:
        port = self.port(ecu, controller)
        if not isinstance(port, CanPort):
            raise TypeError(f"{port.name} is not a CAN controller")
        return port

    def attach(self, port: CanPort | LinPort, bus_name: str) -> None:
        """Put a controller on a bus: on CAN it takes part in arbitration and hears the
        frames; on LIN its USART drives and hears the wire."""
        if bus_name in self.lin_buses:
            if not isinstance(port, LinPort):
                raise TypeError(f"{port.name} cannot join LIN bus {bus_name!r}: not a USART")
            self.lin_buses[bus_name].attach_port(port)
            return
        bus = self.bus(bus_name)
        if not isinstance(port, CanPort):
            raise TypeError(f"{port.name} cannot join CAN bus {bus_name!r}: not a CAN controller")
        bus.attach(port)
        port.bus_request.append(bus.request)
        port.bus_rates = (bus.name, bus.bitrate, bus.data_bitrate)

    def run_until_on_bus(self, port: CanPort, *, timeout_ms: float) -> float:
        """Run until the controller has left INIT (the firmware's boot); returns the time in
        ms. A firmware that never goes on the bus is named, not a bare timeout."""
        try:
            return self.run_until(lambda: not port.initialising, timeout_ms=timeout_ms)
        except VirtualTimeout:
            raise HarnessError(f"{port.name} did not leave INIT within {timeout_ms:g} ms of "
                               "boot: the firmware does not go on the CAN bus") from None

    @property
    def now_ns(self) -> int:
        return self.clock.cycles

    def _lockstep(self) -> Iterable[Lockstep]:
        """The machines, seen only through what lockstep needs of them."""
        return self.ecus.values()

    def next_event_ns(self) -> int | None:
        """When something may next happen: a bus event, an ECU's own next event if it
        sleeps, or the next step while an ECU is awake. None: nothing ever will."""
        now = self.now_ns
        nxt = self.clock.next_deadline()
        for machine in self._lockstep():
            if machine.awake:
                t = now + self.step_ns  # it may ask to send at any time
            elif (wake := machine.next_event_ns()) is not None:
                t = wake
            else:
                continue
            nxt = t if nxt is None or t < nxt else nxt
        return None if nxt is None else max(nxt, now)

    def _move_to(self, target_ns: int) -> None:
        """Run every ECU to `target_ns`, then the buses' events up to it, in time order.
        Nothing an ECU does before `target_ns` can end a frame before it (see above)."""
        for machine in self._lockstep():
            machine.run_to_ns(target_ns)
        self.clock.advance_to(target_ns)

    def _native_lockstep(self) -> NativeNetClock | None:
        """The lockstep in C (bus.c), when the buses and every ECU run natively."""
        native = self._native
        return native if native is not None and native.lockstep else None

    def advance_to(self, end_ns: int) -> None:
        """Run to `end_ns`, or only to the moment something calls `stop()`."""
        if (native := self._native_lockstep()) is not None:
            native.advance_to(end_ns, self.step_ns)
            return
        self._stop = False
        while True:
            nxt = self.next_event_ns()
            target = end_ns if nxt is None else min(end_ns, nxt)
            self._move_to(target)
            if target >= end_ns or self._stop:
                return

    def stop(self) -> None:
        """End the `advance_to` (or `run_for`) under way once this moment's events are done:
        for a node or listener that knows the run has reached its point (a player whose
        last frame is out). Between advances it does nothing."""
        if self._native is not None:
            self._native.state.stop = 1
        self._stop = True

    def run_for(self, *, s: float = 0, ms: float = 0, us: float = 0, ns: int = 0) -> None:
        self.advance_to(self.now_ns + ns + self.clock.cycles_for(s=s, ms=ms, us=us))

    def step(self, end_ns: int | None = None) -> bool:
        """Advance to the next moment something may happen, never past `end_ns`. False when
        nothing can happen before `end_ns` (time then stands at `end_ns`, if one was given)."""
        if (native := self._native_lockstep()) is not None:
            if native.step(end_ns, self.step_ns):
                return True
            if end_ns is not None:
                self.advance_to(end_ns)
            return False
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
        native = self._native_lockstep()
        step = native.stepper(self.step_ns) if native is not None else self.step
        while not predicate():
            if not step(end) and not predicate():
                raise VirtualTimeout(f"condition not met within {timeout_ms} ms of virtual time")
        return self.now_ns / 1e6
