"""A CAN / CAN FD bus in virtual time: arbitration, frame durations, delivery, bus load.

Nodes offer the frame they would send next; when the bus is idle the lowest arbitration
key wins (0 is dominant), the frame occupies the bus for its exact length (stuff bits
included, the data phase at the data bit rate when BRS is set), every other node receives
it at the end of its EOF with that virtual timestamp, and the next arbitration starts after
the intermission. `inject_errors` destroys frames with error frames (a CRC error every node
sees): the sender's controller counts a transmit error, the others a receive error, and the
frame is sent again. Fault confinement itself belongs to the controllers. Not modelled:
bit-level collisions of identical IDs (the first attached node wins), errors a single node
sees alone, ACK errors of a node alone on the bus.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from harness.clock import VirtualClock
from harness.frames.can import CanFrame
from harness.frames.ids import id_key, normalise
from harness.frames.timing import frame_bits

INTERMISSION_BITS = 3
ERROR_FRAME_BITS = 6 + 8  # error flag, error delimiter (the intermission follows as usual)
AFTER_CRC_BITS = 1 + 1 + 7  # ACK slot, ACK delimiter, EOF: where a CRC error is flagged


class CanNode(Protocol):
    name: str

    def offer(self, now_ns: int) -> CanFrame | None:
        """The frame this node would put on the bus at `now_ns`: only frames it had asked
        to send by then (a node simulated ahead of the bus may have asked later)."""

    def pending_since(self) -> int | None:
        """When the earliest frame still waiting was requested, if any."""

    def transmitted(self, frame: CanFrame) -> None:
        """The offered frame won arbitration and was sent (timestamped)."""

    def receive(self, frame: CanFrame) -> None:
        """A frame another node sent (timestamped at its end of frame)."""

    def bus_error(self, transmitting: bool) -> None:
        """An error frame destroyed the frame on the bus; `transmitting`: it was ours."""


@dataclass(slots=True)
class BusStats:
    frames: int = 0
    errors: int = 0  # error frames
    busy_ns: int = 0
    per_id: Counter[int] = field(default_factory=Counter)  # by ID key (harness.frames.ids)

    def load(self, elapsed_ns: int) -> float:
        return self.busy_ns / elapsed_ns if elapsed_ns else 0.0


class CanBus:
    """One bus segment. Its clock must count nanoseconds (hz = 1e9)."""

    def __init__(
        self,
        name: str,
        clock: VirtualClock,
        bitrate: int = 500_000,
        data_bitrate: int | None = None,
    ) -> None:
        if clock.hz != 1_000_000_000:
            raise ValueError("a CAN bus runs on a nanosecond clock (hz = 1e9)")
        if bitrate <= 0 or (data_bitrate is not None and data_bitrate < bitrate):
            raise ValueError(f"{name}: bit rates must be positive, the data rate >= {bitrate}")
        self.name = name
        self.clock = clock
        self.bitrate = bitrate
        self.data_bitrate = data_bitrate or bitrate
        self.nodes: list[CanNode] = []
        self.stats = BusStats()
        self._busy = False
        self._arbitration = clock.deadline(self._arbitrate)
        self._frame_start = 0
        self._errors_to_inject = 0
        self._error_ids: frozenset[int] | None = None

    def attach(self, node: CanNode) -> None:
        if any(n.name == node.name for n in self.nodes):
            raise ValueError(f"{self.name}: a node named {node.name!r} is already attached")
        self.nodes.append(node)

    def request(self, at_ns: int | None = None) -> None:
        """A node asked to send at `at_ns` (default: now): arbitrate then if the bus is idle.
        A busy bus arbitrates again after its intermission anyway. An arbitration for a time
        to come runs after that moment's other events, so that every frame requested for
        it takes part, however early it was queued."""
        now = self.clock.cycles
        at = max(now, now if at_ns is None else at_ns)
        if not self._busy and (self._arbitration.at is None or at < self._arbitration.at):
            self._arbitration.arm_at(at, last=at > now)

    def pending_changed(self, node: CanNode) -> None:
        """`node`'s `pending_since()` changed (the native bus keeps a copy; this one asks)."""

    def inject_errors(self, count: int = 1, ids: Iterable[int] | None = None) -> None:
        """Destroy the next `count` frames (only frames with these IDs, if given: keys of
        `harness.frames.ids`, so 0x600 is the standard ID and any number above 0x7FF an
        extended one)."""
        self._errors_to_inject += count
        self._error_ids = frozenset(map(normalise, ids)) if ids is not None else None

    def duration_ns(self, frame: CanFrame) -> int:
        return frame_bits(frame).duration_ns(self.bitrate, self.data_bitrate if frame.brs else None)

    def longest_frame_ns(self) -> int:
        """An upper bound of any frame's length on this bus: 64 bytes of CAN FD with an
        extended ID and no bit-rate switch, a stuff bit after every 3 bits (worse than the
        worst case, one after 4)."""
        unstuffed = 1 + 32 + 8 + 64 * 8 + 4 + 21 + 6 + 2 + 7 + INTERMISSION_BITS  # SOF..IFS
        return unstuffed * 4 // 3 * 10**9 // self.bitrate

    def stamp_after_ns(self, frame: CanFrame) -> int:
        """From a frame's SOF to its timestamp (the end of its EOF) on this bus."""
        return self.duration_ns(frame) - INTERMISSION_BITS * (10**9 // self.bitrate)

    def started_ns(self, delivered: CanFrame) -> int:
        """When a frame this bus delivered (stamped at the end of its EOF) began: its SOF."""
        return delivered.timestamp_ns - self.stamp_after_ns(delivered)

    def _arbitrate(self) -> None:
        now = self.clock.cycles
        best: tuple[tuple[int, ...], int, CanNode, CanFrame] | None = None
        for index, node in enumerate(self.nodes):
            frame = node.offer(now)
            if frame is not None:
                candidate = (frame.arbitration_key(), index, node, frame)
                if best is None or candidate[:2] < best[:2]:
                    best = candidate
        if best is None:
            later = [t for n in self.nodes if (t := n.pending_since()) is not None and t > now]
            if later:
                self._arbitration.arm_at(min(later), last=True)
            return
        _, _, sender, frame = best
        duration = self.duration_ns(frame)
        self._busy = True
        start = self.clock.cycles
        self._frame_start = start
        bit = 10**9 // self.bitrate
        if self._errors_to_inject and (self._error_ids is None or id_key(
                frame.arbitration_id, frame.is_extended) in self._error_ids):  # fmt: skip
            self._errors_to_inject -= 1
            flagged = start + duration - (INTERMISSION_BITS + AFTER_CRC_BITS) * bit
            self.clock.schedule_at(flagged, lambda: self._error_frame(sender))
            self.clock.schedule_at(flagged + (ERROR_FRAME_BITS + INTERMISSION_BITS) * bit,
                                   self._intermission_over)  # fmt: skip
            return
        end_of_frame = start + duration - INTERMISSION_BITS * bit
        self.clock.schedule_at(end_of_frame, lambda: self._deliver(sender, frame, end_of_frame))
        self.clock.schedule_at(start + duration, self._intermission_over)

    def _error_frame(self, sender: CanNode) -> None:
        self.stats.errors += 1
        for node in self.nodes:
            node.bus_error(transmitting=node is sender)

    def _deliver(self, sender: CanNode, frame: CanFrame, at: int) -> None:
        # Busy time is counted as it passes, so the load read at any moment is at most 1.
        self.stats.busy_ns += at - self._frame_start
        self._frame_start = at
        self.stats.frames += 1
        self.stats.per_id[id_key(frame.arbitration_id, frame.is_extended)] += 1
        stamped = frame.stamped(at, self.name)
        sender.transmitted(stamped)
        for node in self.nodes:
            if node is not sender:
                node.receive(stamped)

    def _intermission_over(self) -> None:
        self.stats.busy_ns += self.clock.cycles - self._frame_start
        self._busy = False
        self._arbitrate()


class PythonNode:
    """A node driven from Python: queue frames to send, read or react to what arrives.

    `tx_order="fifo"` sends in queue order (a TX FIFO); "priority" offers the queued frame
    with the lowest arbitration key first (a TX queue, as CAN controllers have). `listeners`
    see every received frame, `sent_listeners` every frame this node sent; with `keep=False`
    the node does not also collect them in `received` / `sent` (for endless runs), and with
    `hears=False` it ignores what other nodes send (a pure source: a trace player).
    """

    def __init__(self, name: str, bus: CanBus, tx_order: str = "fifo", keep: bool = True,
                 hears: bool = True) -> None:  # fmt: skip
        if tx_order not in ("fifo", "priority"):
            raise ValueError(f"tx_order must be 'fifo' or 'priority', not {tx_order!r}")
        self.name = name
        self.bus = bus
        self.tx_order = tx_order
        self.keep = keep
        self.hears = hears
        self.queue: deque[tuple[int, CanFrame]] = deque()  # (requested at, frame)
        self.sent: list[CanFrame] = []
        self.received: list[CanFrame] = []
        self.listeners: list[Callable[[CanFrame], None]] = []
        self.sent_listeners: list[Callable[[CanFrame], None]] = []
        self._offered: tuple[int, CanFrame] | None = None
        bus.attach(self)

    def send(self, frame: CanFrame, at_ns: int | None = None) -> None:
        """Queue `frame`, requested now or at `at_ns` (a time to come: it is offered from
        then on, so a player can queue its frames ahead of time)."""
        now = self.bus.clock.cycles
        at = now if at_ns is None or at_ns < now else at_ns
        self.queue.append((at, frame))
        if len(self.queue) == 1 or self.tx_order == "priority":
            self.bus.pending_changed(self)
        self.bus.request(at)

    def offer(self, now_ns: int) -> CanFrame | None:
        # The queue is in request order, so FIFO looks at its head only: a long backlog (a
        # replay the bus cannot keep up with) must not make every arbitration slower.
        if self.tx_order == "fifo":
            head = self.queue[0] if self.queue else None
            self._offered = head if head is not None and head[0] <= now_ns else None
        else:
            ready = [item for item in self.queue if item[0] <= now_ns]
            self._offered = min(ready, key=lambda item: item[1].arbitration_key(), default=None)
        return self._offered[1] if self._offered else None

    def pending_since(self) -> int | None:
        """When the frame offered next was requested (FIFO: the head; a queue: the earliest)."""
        if not self.queue:
            return None
        if self.tx_order == "fifo":
            return self.queue[0][0]
        return min(at for at, _ in self.queue)

    def transmitted(self, frame: CanFrame) -> None:
        if self.tx_order == "fifo":  # always the head (a native bus offers it unasked)
            self.queue.popleft()
        else:
            assert self._offered is not None, "transmitted() without a winning offer"
            self.queue.remove(self._offered)
        self._offered = None
        self.bus.pending_changed(self)
        if self.keep:
            self.sent.append(frame)
        for listener in self.sent_listeners:
            listener(frame)

    def receive(self, frame: CanFrame) -> None:
        if not self.hears:
            return
        if self.keep:
            self.received.append(frame)
        for listener in self.listeners:
            listener(frame)

    def bus_error(self, transmitting: bool) -> None:
        """A Python node has no error counters; its frame stays queued and is sent again."""
        if transmitting:
            self._offered = None
