"""Virtual time: one cycle counter for the whole machine and an event scheduler.

The counter lives in the native context (the CPU's block hook advances it), so every reader
sees the same value. Deadlines are whole cycles; events at the same cycle run in the order
they were scheduled, which keeps runs bit-for-bit repeatable.
"""

from __future__ import annotations

import ctypes
import heapq
from collections.abc import Callable
from typing import Protocol


class CycleCounter(Protocol):
    cycles: int
    deadline: int


class _PlainCounter:
    def __init__(self) -> None:
        self.cycles = 0
        self.deadline = 2**64 - 1


Event = tuple[int, int, Callable[[], None]]  # (cycle, sequence number, callback)


class Deadline:
    """One re-armable deadline owned by a peripheral.

    Re-arming or disarming bumps a generation number instead of removing the old heap entry;
    a stale entry fires into nothing. Its state is three integers, so snapshots stay trivial.
    """

    def __init__(self, clock: VirtualClock, callback: Callable[[], None]) -> None:
        self._clock = clock
        self._callback = callback
        self.generation = 0
        self.at: int | None = None
        self.due = 0  # when the last firing was due (may be earlier than the clock now)

    def arm_at(self, cycle: int) -> None:
        self.generation += 1
        self.at = cycle
        generation = self.generation
        self._clock.schedule_at(cycle, lambda: self._fire(generation))

    def arm_in(self, cycles: int) -> None:
        self.arm_at(self._clock.cycles + cycles)

    def disarm(self) -> None:
        self.generation += 1
        self.at = None

    def _fire(self, generation: int) -> None:
        if generation == self.generation and self.at is not None:
            self.due, self.at = self.at, None
            self._callback()

    def state(self) -> tuple[int, int | None, int]:
        return self.generation, self.at, self.due

    def restore(self, state: tuple[int, int | None, int]) -> None:
        self.generation, self.at, self.due = state


class VirtualClock:
    """Cycles since the machine was created (resets do not rewind time) at `hz`, plus a
    min-heap of pending events."""

    def __init__(self, hz: int, counter: CycleCounter | None = None) -> None:
        if hz <= 0:
            raise ValueError(f"clock frequency must be positive, got {hz}")
        self.hz = hz
        self._counter: CycleCounter = counter if counter is not None else _PlainCounter()
        self._events: list[Event] = []
        self._seq = 0

    @property
    def cycles(self) -> int:
        """Cycles so far. While the core runs (inside MMIO callbacks) this is the count
        at the end of the current translated block: Unicorn's PC is not reliable there."""
        return self._counter.cycles

    @cycles.setter
    def cycles(self, value: int) -> None:
        self._counter.cycles = value

    def counter_address(self) -> int | None:
        """Where native code can read the cycle count (a counter in a ctypes structure, as
        the CPU's native context is); None for a plain counter."""
        counter = self._counter
        if not isinstance(counter, ctypes.Structure):
            return None
        return ctypes.addressof(counter) + type(counter).cycles.offset

    @property
    def ns(self) -> int:
        return self.cycles * 1_000_000_000 // self.hz

    @property
    def seconds(self) -> float:
        return self.cycles / self.hz

    def cycles_for(self, *, s: float = 0, ms: float = 0, us: float = 0, ns: float = 0) -> int:
        total_ns = s * 1e9 + ms * 1e6 + us * 1e3 + ns
        return round(total_ns * self.hz / 1e9)

    def schedule_at(self, cycle: int, callback: Callable[[], None]) -> None:
        self._seq += 1
        cycle = max(cycle, self.cycles)
        heapq.heappush(self._events, (cycle, self._seq, callback))
        if cycle < self._counter.deadline:
            self._counter.deadline = cycle  # a running core must stop in time for it

    def deadline(self, callback: Callable[[], None]) -> Deadline:
        return Deadline(self, callback)

    def next_deadline(self) -> int | None:
        return self._events[0][0] if self._events else None

    def fire_due(self) -> bool:
        """Run every event whose deadline has passed; True if any ran."""
        fired = False
        events = self._events
        while events and events[0][0] <= self._counter.cycles:
            heapq.heappop(events)[2]()
            fired = True
        return fired

    def advance_to(self, cycle: int) -> None:
        """Move time forward to `cycle`, running each event at its own time, in order.

        For clocks that nothing else drives (a network's, in tests); a machine's clock is
        advanced by its core instead.
        """
        events = self._events
        while events and events[0][0] <= cycle:
            self._counter.cycles = max(self._counter.cycles, events[0][0])
            heapq.heappop(events)[2]()
        self._counter.cycles = max(self._counter.cycles, cycle)

    def state(self) -> tuple[int, int, list[Event]]:
        return self.cycles, self._seq, list(self._events)

    def restore(self, state: tuple[int, int, list[Event]]) -> None:
        self.cycles, self._seq, events = state
        self._events = list(events)
