"""A CAN / CAN FD bus in virtual time: arbitration, frame durations, delivery, bus load.

Nodes offer the frame they would send next; when the bus is idle the lowest arbitration
key wins (0 is dominant), the frame occupies the bus for its exact length (stuff bits
included, the data phase at the data bit rate when BRS is set), every other node receives
it at the end of its EOF with that virtual timestamp, and the next arbitration starts after
the intermission. Not modelled here: error frames and fault confinement (they belong to the
controllers), bit-level collisions of identical IDs (the first attached node wins).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from harness.clock import VirtualClock
from harness.network.frames import CanFrame
from harness.network.timing import frame_bits

INTERMISSION_BITS = 3


class CanNode(Protocol):
    name: str

    def offer(self) -> CanFrame | None:
        """The frame this node would put on the bus now, if any."""

    def transmitted(self, frame: CanFrame) -> None:
        """The offered frame won arbitration and was sent (timestamped)."""

    def receive(self, frame: CanFrame) -> None:
        """A frame another node sent (timestamped at its end of frame)."""


@dataclass(slots=True)
class BusStats:
    frames: int = 0
    busy_ns: int = 0
    per_id: Counter[int] = field(default_factory=Counter)

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
        self._arbitration_pending = False
        self._frame_start = 0

    def attach(self, node: CanNode) -> None:
        if any(n.name == node.name for n in self.nodes):
            raise ValueError(f"{self.name}: a node named {node.name!r} is already attached")
        self.nodes.append(node)

    @property
    def idle(self) -> bool:
        return not self._busy

    def request(self) -> None:
        """A node has a frame to offer: arbitrate now if the bus is idle."""
        if not self._busy and not self._arbitration_pending:
            self._arbitration_pending = True
            self.clock.schedule_in(0, self._arbitrate)

    def duration_ns(self, frame: CanFrame) -> int:
        return frame_bits(frame).duration_ns(self.bitrate, self.data_bitrate if frame.brs else None)

    def _arbitrate(self) -> None:
        self._arbitration_pending = False
        best: tuple[tuple[int, ...], int, CanNode, CanFrame] | None = None
        for index, node in enumerate(self.nodes):
            frame = node.offer()
            if frame is not None:
                candidate = (frame.arbitration_key(), index, node, frame)
                if best is None or candidate[:2] < best[:2]:
                    best = candidate
        if best is None:
            return
        _, _, sender, frame = best
        duration = self.duration_ns(frame)
        self._busy = True
        start = self.clock.cycles
        end_of_frame = start + duration - INTERMISSION_BITS * 10**9 // self.bitrate
        self.clock.schedule_at(end_of_frame, lambda: self._deliver(sender, frame, end_of_frame))
        self.clock.schedule_at(start + duration, self._intermission_over)
        self._frame_start = start

    def _deliver(self, sender: CanNode, frame: CanFrame, at: int) -> None:
        # Busy time is counted as it passes, so the load read at any moment is at most 1.
        self.stats.busy_ns += at - self._frame_start
        self._frame_start = at
        self.stats.frames += 1
        self.stats.per_id[frame.arbitration_id] += 1
        stamped = replace(frame, timestamp_ns=at, channel=self.name)
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
    with the lowest arbitration key first (a TX queue, as CAN controllers have).
    """

    def __init__(self, name: str, bus: CanBus, tx_order: str = "fifo") -> None:
        if tx_order not in ("fifo", "priority"):
            raise ValueError(f"tx_order must be 'fifo' or 'priority', not {tx_order!r}")
        self.name = name
        self.bus = bus
        self.tx_order = tx_order
        self.queue: deque[CanFrame] = deque()
        self.sent: list[CanFrame] = []
        self.received: list[CanFrame] = []
        self.listeners: list[Callable[[CanFrame], None]] = []
        bus.attach(self)

    def send(self, frame: CanFrame) -> None:
        self.queue.append(frame)
        self.bus.request()

    def offer(self) -> CanFrame | None:
        if not self.queue:
            return None
        if self.tx_order == "fifo":
            return self.queue[0]
        return min(self.queue, key=CanFrame.arbitration_key)

    def transmitted(self, frame: CanFrame) -> None:
        offered = self.offer()
        assert offered is not None
        self.queue.remove(offered)
        self.sent.append(frame)

    def receive(self, frame: CanFrame) -> None:
        self.received.append(frame)
        for listener in self.listeners:
            listener(frame)
