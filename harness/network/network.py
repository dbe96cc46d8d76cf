"""A network: the buses of one simulated vehicle and the nanosecond clock they share."""

from __future__ import annotations

from collections.abc import Callable

from harness.clock import VirtualClock
from harness.errors import VirtualTimeout
from harness.network.can import CanBus

NS_PER_S = 1_000_000_000


class Network:
    """Buses by name on one virtual timeline (ns). Emulated ECUs join it in a later step;
    until then Python nodes and python-can endpoints are its members."""

    def __init__(self) -> None:
        self.clock = VirtualClock(NS_PER_S)
        self.buses: dict[str, CanBus] = {}

    def can_bus(self, name: str, bitrate: int = 500_000, data_bitrate: int | None = None) -> CanBus:
        if name in self.buses:
            raise ValueError(f"the network already has a bus named {name!r}")
        bus = CanBus(name, self.clock, bitrate, data_bitrate)
        self.buses[name] = bus
        return bus

    def bus(self, name: str) -> CanBus:
        try:
            return self.buses[name]
        except KeyError:
            known = ", ".join(self.buses) or "none"
            raise KeyError(f"no bus named {name!r} on this network (buses: {known})") from None

    @property
    def now_ns(self) -> int:
        return self.clock.cycles

    def run_for(self, *, s: float = 0, ms: float = 0, us: float = 0, ns: int = 0) -> None:
        self.clock.advance_to(self.now_ns + ns + self.clock.cycles_for(s=s, ms=ms, us=us))

    def run_until(self, predicate: Callable[[], bool], *, timeout_ms: float) -> float:
        """Advance event by event until `predicate()` holds; returns the time in ms."""
        end = self.now_ns + self.clock.cycles_for(ms=timeout_ms)
        while not predicate():
            nxt = self.clock.next_deadline()
            if nxt is None or nxt > end:
                self.clock.advance_to(end)
                if predicate():
                    break
                raise VirtualTimeout(f"condition not met within {timeout_ms} ms of virtual time")
            self.clock.advance_to(nxt)
        return self.now_ns / 1e6
