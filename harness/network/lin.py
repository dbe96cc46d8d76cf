"""A LIN bus in virtual time, character by character, as the single wire carries it.

Transmitters put characters on the wire (`LineSymbol`: a byte, or a break): an emulated ECU's
USART through its `LinPort`, or the harness's own nodes (`LinNode`; the bus's built-in master
sends headers). Characters that overlap reach receivers as one: the wired AND of what was
sent (dominant wins), noisy when the transmitters did not start within half a bit of each
other. Every port hears every character at its end, its own included: the readback a LIN
transceiver gives its UART. A harness node that reads back something other than what it sent
stops sending (a bit error, counted).

The bus also watches the wire as a LIN analyser does and turns characters into frames
(`LinRecord`, in `records` and told to every node): a break (11 dominant bits or more; a
break that no sync follows, such as a wake-up signal, is no header), the sync byte 0x55, the
protected ID, then the response. The response is complete when the frame's length is reached
(known from `frame_lengths`, which an LDF or a publishing node fills in); otherwise it ends
at the frame's maximum time (1.4 x nominal) or at the next break. Its status is what the
wire carried: "ok", "no response", "incomplete response", "checksum error", "framing error",
"parity error" or "sync error"; a wrong response that several nodes sent is a "collision"
(a collision whose wired AND happens to be a valid frame is "ok", as every receiver sees it).

Sleep and wake-up (ISO 17987-2): after a go-to-sleep command (a master request starting with
0) or 4 s of silence the harness's slaves sleep and answer no header; a dominant phase of
more than 150 us wakes them (a "wake-up" record; none while they are awake) and they answer
again 100 ms later. Faults are injected per frame ID (`inject`): on the harness's own answers
(no response, wrong checksum, a partial response, a framing error, a second answer that
spoils the first) or on the wire (a parity error in the protected ID, whoever sent it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction

from harness.clock import VirtualClock
from harness.frames.lin import (
    BREAK_BITS,
    DIAGNOSTIC_IDS,
    FRAME_TOLERANCE,
    GO_TO_SLEEP,
    IDLE_SLEEP_NS,
    MAX_ID,
    SYNC,
    WAKE_DETECT_NS,
    WAKE_READY_NS,
    WAKE_UP_NS,
    LineSymbol,
    checksum,
    dominant_run,
    max_frame_ns,
    protected_id,
)
from harness.network.ports import LinPort

LIN_BITRATES = range(1_000, 20_001)  # ISO 17987: 1 to 20 kbit/s (19.2, 10.4, 9.6 usual)
BREAK_DETECT_BITS = 11  # what a slave takes as a break (ISO 17987: at least 11 bits)
MASTER = "harness master"  # the bus's own header transmitter (no LDF name has a space)
FAULTS = ("no response", "checksum", "partial", "framing", "collision", "parity")

# The response a node gives for a frame ID: data bytes, or None for no answer this time.
Responder = Callable[[int], bytes | None]


@dataclass(frozen=True, slots=True)
class LinRecord:
    """One frame as the bus saw it, timestamped at its end (or when it timed out); or a
    wake-up signal (status "wake-up", no frame ID)."""

    timestamp_ns: int
    frame_id: int | None
    pid: int | None
    data: bytes
    checksum: int | None
    status: str
    publisher: str = ""
    start_ns: int = 0  # when its header (break) began

    @property
    def is_sleep_command(self) -> bool:
        return self.status == "ok" and self.frame_id == 0x3C and self.data[:1] == b"\x00"

    def __str__(self) -> str:
        time = f"{self.timestamp_ns / 1e6:12.3f} ms"
        start = f"[from {self.start_ns / 1e6:.3f} ms]"
        if self.frame_id is None or self.pid is None:
            return f"{time}  {self.status}  {start}"
        data = self.data.hex(" ") or "-"
        check = "--" if self.checksum is None else f"{self.checksum:02X}"
        note = "  (go-to-sleep)" if self.is_sleep_command else ""
        return (f"{time}  id 0x{self.frame_id:02X} pid 0x{self.pid:02X}  {data:<23}  "
                f"cs {check}  {self.status}{note}  {self.publisher or '-'}  {start}")  # fmt: skip


@dataclass
class LinNode:
    """A node driven from Python: answers the headers it has a responder for, and hears
    every frame (`received`, `listeners`)."""

    name: str
    responders: dict[int, Responder] = field(default_factory=dict)
    received: list[LinRecord] = field(default_factory=list)
    listeners: list[Callable[[LinRecord], None]] = field(default_factory=list)
    enhanced: bool = True  # LIN 2.x checksum (False: classic, LIN 1.x)
    bit_errors: int = 0  # characters it read back different from what it sent

    def publish(self, frame_id: int, data: bytes | Callable[[], bytes | None]) -> None:
        """Answer headers of `frame_id` with `data` (or what the callable returns then)."""
        get = data if callable(data) else (lambda value=bytes(data): value)
        self.responders[frame_id] = lambda _id: get()

    def hear(self, record: LinRecord) -> None:
        self.received.append(record)
        for listener in self.listeners:
            listener(record)


@dataclass
class _OnWire:
    """A character in flight: what the wire carries, and what each transmitter sent."""

    symbol: LineSymbol
    sent: dict[str, int | None]


@dataclass
class _Fault:
    kind: str
    count: int
    keep: int  # "partial": the bytes sent before the publisher stops


class LinBus:
    """One LIN cluster. Its clock counts nanoseconds (a network's)."""

    def __init__(self, name: str, clock: VirtualClock, bitrate: int = 19_200) -> None:
        if bitrate not in LIN_BITRATES:
            raise ValueError(f"{name}: LIN runs at 1,000 to 20,000 bit/s (usually 19,200, 10,400 "
                             f"or 9,600; J2602: 10,417), not {bitrate}")  # fmt: skip
        self.name = name
        self.clock = clock
        self.bitrate = bitrate
        self.bit_ns = Fraction(1_000_000_000, bitrate)
        self.nodes: list[LinNode] = []
        self.ports: list[LinPort] = []
        self.records: list[LinRecord] = []
        self.frame_lengths: dict[int, int] = {}  # frame ID -> data bytes, where known
        self.classic: set[int] = set()  # frame IDs with the classic checksum (LIN 1.x)
        self.bit_errors = 0  # the built-in master's
        self._wire: list[_OnWire] = []
        # harness senders' characters to come (their times are set as each goes out), and
        # when each sender's last character ends, exactly
        self._queues: dict[str, list[LineSymbol]] = {}
        self._sent_until: dict[str, Fraction] = {}
        self._faults: dict[int, list[_Fault]] = {}
        self._last_end = clock.cycles
        self._asleep = False
        self._ready_at = clock.cycles  # when the harness's slaves answer again after a wake-up
        # the analyser's view of the frame in progress
        self._phase = "idle"  # idle, sync, pid, response
        self._header_start = 0
        self._pid = 0
        self._response: list[int] = []
        self._response_end = 0
        self._publishers: list[str] = []  # who sent the response's characters
        self._disturbed = False  # a framing error or noise in the response
        self._timeout = clock.deadline(self._response_timed_out)

    # ---- who is on the bus ----

    def attach(self, node: LinNode) -> LinNode:
        if any(n.name == node.name for n in self.nodes) or node.name == MASTER:
            raise ValueError(f"{self.name}: a node named {node.name!r} is already attached")
        self.nodes.append(node)
        return node

    def node(self, name: str) -> LinNode:
        return self.attach(LinNode(name))

    def attach_port(self, port: LinPort) -> None:
        if port in self.ports:
            raise ValueError(f"{self.name}: {port.name} is already attached")
        self.ports.append(port)
        port.lin_transmit.append(self.transmit)
        port.lin_bitrate = self.bitrate

    @property
    def idle(self) -> bool:
        """Nothing on the wire and no frame waiting for its response."""
        return not self._wire and self._phase == "idle" and not any(self._queues.values())

    @property
    def asleep(self) -> bool:
        """The harness's slaves sleep: a go-to-sleep command, or 4 s of silence."""
        return self._asleep or self.clock.cycles - self._last_end >= IDLE_SLEEP_NS

    # ---- what tests and masters do ----

    def send_header(self, frame_id: int, *, sync: int = SYNC,
                    break_bits: int = BREAK_BITS) -> None:  # fmt: skip
        """The built-in master sends a header now: break, sync (another value: a sync
        error), protected ID (`inject(frame_id, "parity")` for a parity error)."""
        if not self.idle:
            raise RuntimeError(f"{self.name}: header 0x{frame_id:02X} at {self.clock.cycles} ns "
                               "while the bus is busy")  # fmt: skip
        pid = protected_id(frame_id)
        self._send(MASTER, [LineSymbol.break_(Fraction(0), self.bit_ns, break_bits),
                            self._byte(sync), self._byte(pid)])  # fmt: skip

    def send_frame(self, frame_id: int, data: bytes) -> None:
        """The built-in master sends a whole frame it publishes: header and response."""
        self.send_header(frame_id)
        pid = protected_id(frame_id)
        check = checksum(data, None if frame_id in self.classic else pid)
        self.frame_lengths.setdefault(frame_id, len(data))
        self._queues[MASTER] += [self._byte(b) for b in (*data, check)]

    def go_to_sleep(self) -> None:
        """The built-in master sends the go-to-sleep command."""
        self.send_frame(0x3C, GO_TO_SLEEP)

    def wake_up(self, sender: str = MASTER) -> None:
        """A node (the master by default) sends a wake-up signal: 1 ms dominant."""
        bits = math.ceil(WAKE_UP_NS / self.bit_ns)
        self._send(sender, [LineSymbol.break_(Fraction(0), self.bit_ns, bits)])

    def inject(self, frame_id: int, fault: str, *, count: int = 1, keep: int = 1) -> None:
        """Make the next `count` frames `frame_id` go wrong: the harness's answer is missing
        ("no response"), has a wrong checksum, stops after `keep` bytes ("partial"), has a
        framing error in its first byte, or meets a second, different answer ("collision");
        or the protected ID on the wire has a parity error ("parity")."""
        protected_id(frame_id)
        if fault not in FAULTS:
            raise ValueError(f"unknown LIN fault {fault!r}; faults: {', '.join(FAULTS)}")
        if count < 1 or keep < 1:
            raise ValueError(f"a fault is injected into 1 frame or more, keeping 1 byte or more; "
                             f"got count={count}, keep={keep}")  # fmt: skip
        length = self.frame_lengths.get(frame_id)
        if fault == "partial" and length is not None and keep > length:
            raise ValueError(f"frame 0x{frame_id:02X} has {length} data bytes and a checksum: a "
                             f"partial response keeps 1..{length} of them, not {keep}")  # fmt: skip
        if fault != "parity" and not any(frame_id in n.responders for n in self.nodes):
            raise ValueError(f"no harness node answers frame 0x{frame_id:02X}: '{fault}' acts on "
                             "the harness's answers (an ECU's own response can only get "
                             "'parity')")  # fmt: skip
        self._faults.setdefault(frame_id, []).append(_Fault(fault, count, keep))

    # ---- the wire ----

    def transmit(self, sender: str, symbol: LineSymbol) -> None:
        """`sender` drives `symbol` onto the wire; overlapping characters merge."""
        for on_wire in self._wire:
            current = on_wire.symbol
            overlap = symbol.start_ns < current.end_ns and symbol.end_ns > current.start_ns
            if overlap and sender not in on_wire.sent:
                on_wire.symbol = self._merge(current, symbol)
                on_wire.sent[sender] = symbol.value
                return
        on_wire = _OnWire(symbol, {sender: symbol.value})
        self._wire.append(on_wire)
        self.clock.schedule_at(symbol.end_ns, lambda: self._deliver(on_wire))

    def _merge(self, a: LineSymbol, b: LineSymbol) -> LineSymbol:
        value = None if a.value is None or b.value is None else a.value & b.value
        framing_error = a.framing_error or b.framing_error
        dominant = (max(a.dominant_bits, b.dominant_bits) if value is None
                    else dominant_run(value, framing_error))  # fmt: skip
        return LineSymbol(
            min(a.start_ns, b.start_ns), max(a.end_ns, b.end_ns), value, dominant, framing_error,
            a.noise or b.noise or abs(a.start_ns - b.start_ns) * 2 >= self.bit_ns,
        )  # fmt: skip

    def _deliver(self, on_wire: _OnWire) -> None:
        symbol = on_wire.symbol
        if self.clock.cycles < symbol.end_ns:  # a later character merged in: wait for it
            self.clock.schedule_at(symbol.end_ns, lambda: self._deliver(on_wire))
            return
        self._wire.remove(on_wire)
        symbol = self._wire_fault(symbol)
        self._watch(symbol, sorted(on_wire.sent))
        self._last_end = symbol.end_ns
        for port in self.ports:
            port.lin_received(symbol)
        for sender, sent in on_wire.sent.items():
            if sender in self._queues:
                self._read_back(sender, sent, symbol)

    def _byte(self, value: int, *, framing_error: bool = False) -> LineSymbol:
        """A byte the harness sends, back to back after its previous character (timed when
        it goes on the wire)."""
        return LineSymbol.byte(Fraction(0), self.bit_ns, value, framing_error=framing_error)

    def _send(self, sender: str, symbols: Sequence[LineSymbol]) -> None:
        """Queue characters for a harness sender; the first goes out now, each next one when
        the previous one has been read back intact."""
        queue = self._queues.setdefault(sender, [])
        idle = not queue
        queue += symbols
        if idle:
            self._transmit_next(sender, Fraction(self.clock.cycles))

    def _transmit_next(self, sender: str, at: Fraction) -> None:
        queue = self._queues[sender]
        if queue:
            template = queue[0]
            end = at + template.bits * self.bit_ns
            self._sent_until[sender] = end
            self.transmit(sender, replace(template, start_ns=math.ceil(at), end_ns=math.ceil(end)))

    def _read_back(self, sender: str, sent: int | None, symbol: LineSymbol) -> None:
        queue = self._queues[sender]
        queue.pop(0)
        if sent != symbol.value:  # a bit error: a LIN node stops sending
            queue.clear()
            if sender == MASTER:
                self.bit_errors += 1
            for node in self.nodes:
                node.bit_errors += node.name == sender
            return
        exact_end = self._sent_until[sender]  # unless a longer character merged with it
        self._transmit_next(sender, max(exact_end, Fraction(symbol.end_ns - 1)))

    def _wire_fault(self, symbol: LineSymbol) -> LineSymbol:
        value = symbol.value
        if self._phase == "pid" and value is not None and self._take_fault(value & MAX_ID,
                                                                            ("parity",)):
            return replace(symbol, value=value ^ 0x80)
        return symbol

    def _take_fault(self, frame_id: int, kinds: tuple[str, ...]) -> _Fault | None:
        for fault in self._faults.get(frame_id, []):
            if fault.kind in kinds:
                fault.count -= 1
                if fault.count <= 0:
                    self._faults[frame_id].remove(fault)
                return fault
        return None

    # ---- the analyser ----

    def _watch(self, symbol: LineSymbol, senders: list[str]) -> None:
        if self.asleep and symbol.dominant_ns(self.bit_ns) > WAKE_DETECT_NS:
            self._asleep = False
            self._ready_at = symbol.end_ns + WAKE_READY_NS
            self._record(LinRecord(symbol.end_ns, None, None, b"", None, "wake-up",
                                   start_ns=symbol.start_ns))  # fmt: skip
        if symbol.dominant_bits >= BREAK_DETECT_BITS:
            if self._phase == "response":
                self._finish()
            self._phase, self._header_start = "sync", symbol.start_ns
            # sync and PID must follow (a break alone, a wake-up signal, holds nothing up)
            self._timeout.arm_at(symbol.end_ns + math.ceil(FRAME_TOLERANCE * 21 * self.bit_ns))
            return
        value = 0x00 if symbol.value is None else symbol.value  # too short for a break
        framing_error = symbol.framing_error or symbol.value is None
        if self._phase == "sync":
            self._phase = "pid" if value == SYNC else "idle"
            if value != SYNC:
                self._record(LinRecord(symbol.end_ns, None, None, bytes([value]), None,
                                       "sync error", start_ns=self._header_start))  # fmt: skip
        elif self._phase == "pid":
            self._header_done(value, symbol.end_ns)
        elif self._phase == "response":
            self._response.append(value)
            self._response_end = symbol.end_ns
            self._publishers += [s for s in senders if s not in self._publishers]
            self._disturbed = self._disturbed or framing_error or symbol.noise
            expected = self.frame_lengths.get(self._pid & MAX_ID)
            if expected is not None and len(self._response) >= expected + 1:
                self._finish()

    def _header_done(self, pid: int, end_ns: int) -> None:
        frame_id = pid & MAX_ID
        if protected_id(frame_id) != pid:
            self._phase = "idle"
            self._record(LinRecord(end_ns, frame_id, pid, b"", None, "parity error",
                                   start_ns=self._header_start))  # fmt: skip
            return
        self._phase, self._pid = "response", pid
        self._response, self._publishers, self._disturbed = [], [], False
        expected = self.frame_lengths.get(frame_id, 8)
        self._timeout.arm_at(self._header_start + max_frame_ns(expected, self.bitrate))
        self._answer(frame_id)

    def _answer(self, frame_id: int) -> None:
        """The harness's slaves that publish `frame_id` answer, faults applied."""
        if self.asleep or self.clock.cycles < self._ready_at:
            return
        answers = [(node, data) for node in self.nodes
                   if (responder := node.responders.get(frame_id)) is not None
                   and (data := responder(frame_id)) is not None]  # fmt: skip
        if not answers or self._take_fault(frame_id, ("no response",)):
            return
        fault = self._take_fault(frame_id, ("checksum", "partial", "framing", "collision"))
        for node, data in answers:
            self.frame_lengths.setdefault(frame_id, len(data))
            enhanced = node.enhanced and frame_id not in self.classic
            check = checksum(data, self._pid if enhanced else None)
            if fault and fault.kind == "checksum":
                check ^= 0xFF
            response = [*data, check]
            if fault and fault.kind == "partial":
                response = response[: fault.keep]
            symbols = [self._byte(b) for b in response]
            if fault and fault.kind == "framing":
                symbols[0] = self._byte(response[0], framing_error=True)
            self._send(node.name, symbols)
            if fault and fault.kind == "collision":  # a second slave with other news
                fault = None
                self._send(f"{node.name}'", [self._byte(b) for b in _colliding(response)])

    def _response_timed_out(self) -> None:
        if self._phase == "response":
            self._finish()
        else:  # a break (or break and sync) that no header completed
            self._phase = "idle"

    def _finish(self) -> None:
        """The response is complete, cut short by a break, or out of time: its status is
        what the wire carried; "collision" when that is wrong and several nodes sent it."""
        self._timeout.disarm()
        self._phase = "idle"
        frame_id, pid, response = self._pid & MAX_ID, self._pid, bytes(self._response)
        publisher = ",".join(self._publishers)
        expected = self.frame_lengths.get(frame_id)
        length = len(response) - 1 if expected is None else expected
        timeout_at = self._header_start + max_frame_ns(expected or 8, self.bitrate)
        if not response:
            record = LinRecord(timeout_at, frame_id, pid, b"", None, "no response")
        elif length < 1 or len(response) < length + 1:
            status = "incomplete response"
            if len(self._publishers) > 1 or self._disturbed:
                status = "collision" if len(self._publishers) > 1 else "framing error"
            record = LinRecord(timeout_at, frame_id, pid, response, None, status, publisher)
        else:
            data, check = response[:length], response[length]
            classic = frame_id in self.classic or frame_id in DIAGNOSTIC_IDS
            status = "ok" if checksum(data, None if classic else pid) == check else "checksum error"
            if status != "ok" or self._disturbed:
                status = ("collision" if len(self._publishers) > 1
                          else "framing error" if self._disturbed else status)  # fmt: skip
            record = LinRecord(self._response_end, frame_id, pid, data, check, status, publisher)
        record = replace(record, start_ns=self._header_start)
        if record.is_sleep_command:
            self._asleep = True
        self._record(record)

    def _record(self, record: LinRecord) -> None:
        self.records.append(record)
        for node in self.nodes:
            node.hear(record)


def _colliding(response: list[int]) -> list[int]:
    """A second answer that spoils the first on the wire: one bit less (wired AND, so the
    wire carries this answer) in the checksum, or in a data byte if the checksum is 0, so the
    frame on the wire has a wrong checksum whatever the data."""
    second = list(response)
    at = len(second) - 1 if second[-1] else next((i for i, b in enumerate(second) if b), 0)
    second[at] &= second[at] - 1  # clear the lowest set bit
    return second


class ScheduleTable:
    """A master's schedule: (frame ID, slot in ms) entries sent in turn, looping, each
    header at the start of its slot (as an LDF's schedule table). `run_once(slots)` puts
    other slots in once, from the next slot on (a collision-resolving table)."""

    def __init__(self, bus: LinBus, slots: Sequence[tuple[int, float]],
                 send: Callable[[int], None] | None = None) -> None:  # fmt: skip
        if not slots:
            raise ValueError("a schedule table needs at least one slot")
        for frame_id, slot_ms in slots:
            protected_id(frame_id)
            if not slot_ms > 0:
                raise ValueError(f"slot of 0x{frame_id:02X}: {slot_ms} ms is not a time")
        self.bus = bus
        self.slots = list(slots)
        self._send = send or bus.send_header  # what a slot does with its frame ID
        self.running = False
        self.overruns = 0  # slots whose header could not go: the previous frame still ran
        self._index = 0
        self._once: list[tuple[int, float]] = []
        self._deadline = bus.clock.deadline(self._next_slot)

    def start(self) -> None:
        self.running = True
        self._deadline.arm_at(self.bus.clock.cycles)

    def stop(self) -> None:
        self.running = False
        self._deadline.disarm()

    def run_once(self, slots: Sequence[tuple[int, float]]) -> None:
        if not self._once:
            self._once = list(slots)

    def _next_slot(self) -> None:
        if not self.running:
            return
        if self._once:
            frame_id, slot_ms = self._once.pop(0)
        else:
            frame_id, slot_ms = self.slots[self._index]
            self._index = (self._index + 1) % len(self.slots)
        if self.bus.idle:
            self._send(frame_id)
        else:
            self.overruns += 1
        self._deadline.arm_at(self.bus.clock.cycles + round(slot_ms * 1e6))
