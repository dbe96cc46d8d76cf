"""A LIN bus in virtual time: one master sends headers, one publisher answers each.

The master sends a header (break, sync, protected ID: 34 bit times); the node that publishes
that frame sends its response (data and checksum, 10 bit times a byte) straight after; every
node, the publisher included, sees the frame at the end of the response. Whatever goes wrong
is a status on the frame, as a LIN driver reports it: no publisher answers ("no response",
seen at the frame's maximum time, 1.4 x nominal), two answer at once ("collision", as an
event-triggered frame's publishers do), a checksum that does not match ("checksum error").
Schedule tables run the master's frames in their slots, as an LDF's schedule does.

Not modelled yet: the USART that puts an emulated ECU on this bus, break/sync errors, sleep
and wake-up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from harness.clock import VirtualClock
from harness.frames.lin import LinFrame, max_frame_ns, nominal_ns, protected_id

LIN_BITRATES = (9_600, 10_400, 19_200)

# The response a node gives for a frame ID: data bytes, or None for no answer this time.
Responder = Callable[[int], bytes | None]


@dataclass(frozen=True, slots=True)
class LinRecord:
    """One frame as the bus saw it, timestamped at its end (or when it timed out)."""

    timestamp_ns: int
    frame_id: int
    pid: int
    data: bytes
    checksum: int | None
    status: str  # "ok", "no response", "collision", "checksum error"
    publisher: str = ""

    def __str__(self) -> str:
        data = self.data.hex(" ") or "-"
        check = "--" if self.checksum is None else f"{self.checksum:02X}"
        return (f"{self.timestamp_ns / 1e6:12.3f} ms  id 0x{self.frame_id:02X} pid "
                f"0x{self.pid:02X}  {data:<23}  cs {check}  {self.status}")  # fmt: skip


@dataclass
class LinNode:
    """A node driven from Python: publishes the frames it has a responder for, and hears
    every frame (`received`, `listeners`)."""

    name: str
    responders: dict[int, Responder] = field(default_factory=dict)
    received: list[LinRecord] = field(default_factory=list)
    listeners: list[Callable[[LinRecord], None]] = field(default_factory=list)
    enhanced: bool = True  # LIN 2.x checksum (False: classic, LIN 1.x)
    corrupt_next: set[int] = field(default_factory=set)  # frame IDs whose next checksum is wrong

    def publish(self, frame_id: int, data: bytes | Callable[[], bytes | None]) -> None:
        """Answer headers of `frame_id` with `data` (or what the callable returns then)."""
        get = data if callable(data) else (lambda value=bytes(data): value)
        self.responders[frame_id] = lambda _id: get()

    def hear(self, record: LinRecord) -> None:
        self.received.append(record)
        for listener in self.listeners:
            listener(record)


class LinBus:
    """One LIN cluster. Its clock counts nanoseconds (a network's)."""

    def __init__(self, name: str, clock: VirtualClock, bitrate: int = 19_200) -> None:
        if bitrate not in LIN_BITRATES:
            raise ValueError(f"{name}: LIN runs at {', '.join(map(str, LIN_BITRATES))} bit/s, "
                             f"not {bitrate}")  # fmt: skip
        self.name = name
        self.clock = clock
        self.bitrate = bitrate
        self.nodes: list[LinNode] = []
        self.records: list[LinRecord] = []
        self._busy_until = 0

    def attach(self, node: LinNode) -> LinNode:
        if any(n.name == node.name for n in self.nodes):
            raise ValueError(f"{self.name}: a node named {node.name!r} is already attached")
        self.nodes.append(node)
        return node

    def node(self, name: str) -> LinNode:
        return self.attach(LinNode(name))

    @property
    def idle(self) -> bool:
        return self.clock.cycles >= self._busy_until

    def send_header(self, frame_id: int) -> None:
        """The master sends a header now; the publisher's response follows at once."""
        now = self.clock.cycles
        if now < self._busy_until:
            raise RuntimeError(f"{self.name}: header 0x{frame_id:02X} at {now} ns while a frame "
                               f"runs until {self._busy_until} ns")  # fmt: skip
        pid = protected_id(frame_id)
        answers = [(node, data) for node in self.nodes
                   if (responder := node.responders.get(frame_id)) is not None
                   and (data := responder(frame_id)) is not None]  # fmt: skip
        if len(answers) != 1:
            status = "no response" if not answers else "collision"
            longest = max((len(data) for _node, data in answers), default=8)
            end = now + max_frame_ns(longest, self.bitrate)
            record = LinRecord(end, frame_id, pid, b"", None, status)
        else:
            node, data = answers[0]
            frame = LinFrame(frame_id, data, node.enhanced)
            checksum = frame.checksum
            status = "ok"
            if frame_id in node.corrupt_next:
                node.corrupt_next.discard(frame_id)
                checksum ^= 0xFF
                status = "checksum error"
            end = now + nominal_ns(len(data), self.bitrate)
            record = LinRecord(end, frame_id, pid, data, checksum, status, node.name)
        self._busy_until = end
        self.clock.schedule_at(end, lambda: self._deliver(record))

    def _deliver(self, record: LinRecord) -> None:
        self.records.append(record)
        for node in self.nodes:
            node.hear(record)


class ScheduleTable:
    """A master's schedule: (frame ID, slot in ms) entries sent in turn, looping, each
    header at the start of its slot (as an LDF's schedule table)."""

    def __init__(self, bus: LinBus, slots: Sequence[tuple[int, float]]) -> None:
        if not slots:
            raise ValueError("a schedule table needs at least one slot")
        for frame_id, slot_ms in slots:
            protected_id(frame_id)
            if not slot_ms > 0:
                raise ValueError(f"slot of 0x{frame_id:02X}: {slot_ms} ms is not a time")
        self.bus = bus
        self.slots = list(slots)
        self.running = False
        self.overruns = 0  # slots whose header could not go: the previous frame still ran
        self._index = 0
        self._deadline = bus.clock.deadline(self._next_slot)

    def start(self) -> None:
        self.running = True
        self._deadline.arm_at(self.bus.clock.cycles)

    def stop(self) -> None:
        self.running = False
        self._deadline.disarm()

    def _next_slot(self) -> None:
        if not self.running:
            return
        frame_id, slot_ms = self.slots[self._index]
        self._index = (self._index + 1) % len(self.slots)
        if self.bus.idle:
            self.bus.send_header(frame_id)
        else:
            self.overruns += 1
        self._deadline.arm_at(self.bus.clock.cycles + round(slot_ms * 1e6))
