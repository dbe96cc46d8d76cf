"""Virtual time: one cycle counter for the whole machine and an event scheduler.

The counter lives in the native context (the CPU's block hook advances it), so every reader
sees the same value. Deadlines are whole cycles; events at the same cycle run in the order
they were scheduled, which keeps runs bit-for-bit repeatable. With the native exception path
some events (SysTick's) are queued in C: they take their sequence numbers from the same
counter, and the two queues are merged by (cycle, sequence number).
"""

from __future__ import annotations

import ctypes
import heapq
from collections.abc import Callable
from typing import Protocol

NEVER = 2**64 - 1
LAST = 2**62  # a sequence number's flag: after the unflagged events of its cycle (bus.c too)


class CycleCounter(Protocol):
    cycles: int
    deadline: int
    seq: int


class NativeQueue(Protocol):
    """Where the native event queue meets this one (the CPU's native context)."""

    py_next_cycle: int  # this queue's earliest event, published for the native loop
    py_next_seq: int
    native_next_cycle: int  # the native queue's earliest event; NEVER if none
    native_next_seq: int


class _PlainCounter:
    def __init__(self) -> None:
        self.cycles = 0
        self.deadline = NEVER
        self.seq = 0


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

    def arm_at(self, cycle: int, last: bool = False) -> None:
        self.generation += 1
        self.at = cycle
        self._clock.schedule_at(cycle, _Firing(self, self.generation), last)
        self._clock._drop_stale()  # the entry it replaces, if that was the queue's head

    def arm_in(self, cycles: int) -> None:
        self.arm_at(self._clock.cycles + cycles)

    def disarm(self) -> None:
        self.generation += 1
        self.at = None
        self._clock._drop_stale()

    def _fire(self) -> None:
        self.due, self.at = self.at or 0, None
        self._callback()

    def state(self) -> tuple[int, int | None, int]:
        return self.generation, self.at, self.due

    def restore(self, state: tuple[int, int | None, int]) -> None:
        self.generation, self.at, self.due = state


class _Firing:
    """A deadline's entry in the clock's queue; stale once the deadline is re-armed or
    disarmed. A stale entry fires into nothing, and is dropped from the queue's head so
    that `next_deadline` (how far a network may step) names a moment something happens."""

    __slots__ = ("deadline", "generation")

    def __init__(self, deadline: Deadline, generation: int) -> None:
        self.deadline, self.generation = deadline, generation

    @property
    def stale(self) -> bool:
        return self.generation != self.deadline.generation or self.deadline.at is None

    def __call__(self) -> None:
        if not self.stale:
            self.deadline._fire()


class VirtualClock:
    """Cycles since the machine was created (resets do not rewind time) at `hz`, plus a
    min-heap of pending events."""

    def __init__(self, hz: int, counter: CycleCounter | None = None,
                 native: tuple[NativeQueue, Callable[[], None]] | None = None) -> None:  # fmt: skip
        """`native`: the native queue's shared fields and the function that runs its
        earliest event."""
        if hz <= 0:
            raise ValueError(f"clock frequency must be positive, got {hz}")
        self.hz = hz
        self._counter: CycleCounter = counter if counter is not None else _PlainCounter()
        self._events: list[Event] = []
        self._native: NativeQueue | None = native[0] if native else None
        self._fire_native: Callable[[], None] | None = native[1] if native else None

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

    def schedule_at(self, cycle: int, callback: Callable[[], None], last: bool = False) -> None:
        """Run `callback` at `cycle`, after the events already queued for it; `last`: after
        every event at that cycle that is not `last` too, whenever it is queued (a CAN bus
        arbitrating for a frame requested ahead of time lets every other request made for
        that moment take part)."""
        counter = self._counter
        counter.seq = seq = counter.seq + 1
        if last:
            seq |= LAST
        cycle = max(cycle, counter.cycles)
        heapq.heappush(self._events, (cycle, seq, callback))
        if cycle < counter.deadline:
            counter.deadline = cycle  # a running core must stop in time for it
        if self._native is not None and self._events[0][1] == seq:
            self._native.py_next_cycle, self._native.py_next_seq = cycle, seq

    def _drop_stale(self) -> None:
        """Drop stale deadline entries from the queue's head (and tell the native loop),
        so the next event is one that does something. Not on `restore`: a machine restores
        its clock and its deadlines one after the other, and between the two they disagree."""
        events = self._events
        dropped = False
        while events and isinstance(head := events[0][2], _Firing) and head.stale:
            heapq.heappop(events)
            dropped = True
        if dropped:
            self._publish()

    def _publish(self) -> None:
        """Tell the native loop when this queue's earliest event falls."""
        if self._native is not None:
            events = self._events
            self._native.py_next_cycle, self._native.py_next_seq = (
                events[0][:2] if events else (NEVER, 0))

    def deadline(self, callback: Callable[[], None]) -> Deadline:
        return Deadline(self, callback)

    def next_deadline(self) -> int | None:
        self._drop_stale()
        nxt = self._events[0][0] if self._events else None
        native = self._native
        if native is not None and native.native_next_cycle != NEVER and (
                nxt is None or native.native_next_cycle < nxt):
            return int(native.native_next_cycle)
        return nxt

    def fire_due(self) -> bool:
        """Run every event whose deadline has passed, in order; True if any ran."""
        return self._run_events(self._counter.cycles)

    def advance_to(self, cycle: int) -> None:
        """Move time forward to `cycle`, running each event at its own time, in order.

        For clocks that nothing else drives (a network's, in tests); a machine's clock is
        advanced by its core instead.
        """
        self._run_events(cycle)
        self._counter.cycles = max(self._counter.cycles, cycle)

    def _run_events(self, limit: int) -> bool:
        """Run the events due by `limit`, Python's and native ones merged by (cycle, sequence
        number), each at its own time; True if any ran."""
        events, counter, native = self._events, self._counter, self._native
        fired = False
        while True:
            at, seq = ((native.native_next_cycle, native.native_next_seq) if native is not None
                       else (NEVER, 0))
            if events and events[0][0] <= limit and (events[0][0], events[0][1]) < (at, seq):
                counter.cycles = max(counter.cycles, events[0][0])
                heapq.heappop(events)[2]()
                self._publish()
                self._drop_stale()
            elif at <= limit and self._fire_native is not None:
                counter.cycles = max(counter.cycles, at)
                self._fire_native()
            else:
                return fired
            fired = True

    def state(self) -> tuple[int, int, list[Event]]:
        return self.cycles, self._counter.seq, list(self._events)

    def restore(self, state: tuple[int, int, list[Event]]) -> None:
        self.cycles, self._counter.seq, events = state
        self._events = list(events)
        self._publish()
