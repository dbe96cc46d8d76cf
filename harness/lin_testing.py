"""A LIN cluster from its LDF in virtual time: the slaves the ECU does not play, as harness
nodes answering with the LDF's signals, the LDF's schedule tables, and checks for tests."""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import ldf_codegen
from harness.errors import HarnessError, VirtualTimeout
from harness.frames.lin import protected_id
from harness.ldf import Ldf, LdfError, LdfFrame
from harness.machine import Machine
from harness.network import Network
from harness.network.lin import LinBus, LinNode, LinRecord, ScheduleTable
from harness.testing import Condition, meets


@dataclass(frozen=True, slots=True)
class LinDecoded:
    """A frame the bus carried, with its signals decoded by the LDF."""

    name: str
    signals: dict[str, Any]
    record: LinRecord

    @property
    def timestamp_ns(self) -> int:
        return self.record.timestamp_ns


class LinCluster:
    """The LDF on one LIN bus: frame lengths and checksum models for the bus's analyser, and
    every node not in `emulated` (by default the master: an ECU plays it) as a harness node
    answering with its frames' signals (initial values until `publish` changes them). A
    slave answers an event-triggered frame when one of its associated frames has changed
    since it last went out, as LIN 2.x asks. With `firmware`, the ECU's generated LIN tables
    must be the LDF's."""

    def __init__(self, network: Network, ldf: Ldf, bus: str = "lin0",
                 emulated: Iterable[str] | None = None, firmware: Machine | None = None,
                 ) -> None:  # fmt: skip
        self.network = network
        self.ldf = ldf
        if firmware is not None:
            check_firmware_tables(firmware, ldf)
        if bus not in network.lin_buses:
            known = ", ".join(network.lin_buses) or "none"
            raise KeyError(f"no LIN bus named {bus!r} on this network (LIN buses: {known})")
        self.bus: LinBus = network.lin_buses[bus]
        if self.bus.bitrate != ldf.bitrate:
            raise ValueError(f"{bus} runs at {self.bus.bitrate} bit/s, {ldf.source} at "
                             f"{ldf.bitrate} bit/s")  # fmt: skip
        emulated = {ldf.master} if emulated is None else set(emulated)
        self.emulated = emulated
        for node in emulated:
            ldf.published_by(node)  # unknown node names fail here
        for frame in ldf.frames.values():
            self.bus.frame_lengths[frame.frame_id] = frame.length
            if not frame.enhanced:
                self.bus.classic.add(frame.frame_id)
        self._data = {f.name: self._with_pid(f, ldf.initial(f.name)) for f in self._plain()}
        self._news: set[str] = set()  # associated frames changed since they last went out
        self.nodes: dict[str, LinNode] = {}
        for name in ldf.nodes:
            if name not in emulated:
                self.nodes[name] = self.bus.node(name)
                self._serve(self.nodes[name])
        self.bus.attach(self._watcher())
        self._schedule: ScheduleTable | None = None
        self._requests: list[bytes] = []  # master requests waiting for a MasterReq slot

    # ---- what the harness's slaves send ----

    def publish(self, frame: str, **signals: Any) -> bytes:
        """Set signals of a frame a harness slave publishes (the others keep their values);
        returns the new data."""
        f = self.ldf.frame(frame)
        if f.name not in self._data or f.publisher not in self.nodes:
            raise ValueError(f"{f.name} is published by {f.publisher or 'the master'}, not by a "
                             f"harness slave ({', '.join(self.nodes) or 'none'})")  # fmt: skip
        data = self.ldf.update(f.name, self._data[f.name], **signals)
        self._data[f.name] = self._with_pid(f, data)
        self._news.add(f.name)
        return self._data[f.name]

    def inject(self, frame: str, fault: str, *, count: int = 1, keep: int = 1) -> None:
        """Fault injection on the frame: one of `FAULTS` (see `LinBus.inject`)."""
        self.bus.inject(self.ldf.frame(frame).frame_id, fault, count=count, keep=keep)

    def wake_up(self, node: str | None = None) -> None:
        """A harness slave (or the bus's master) sends a wake-up signal."""
        if node is None:
            self.bus.wake_up()
        elif node in self.nodes:
            self.bus.wake_up(node)
        else:
            raise ValueError(f"{node!r} is not a harness node ({', '.join(self.nodes)})")

    def slave_response(self, node: str, data: bytes) -> None:
        """A harness slave answers the next slave-response header (0x3D) with `data` (8
        bytes, classic checksum): a diagnostic response, e.g. to the ECU's master request."""
        if node not in self.nodes or node == self.ldf.master:
            raise ValueError(f"{node!r} is not a harness slave ({', '.join(self.nodes)})")
        if len(data) != 8:
            raise ValueError(f"a slave response is 8 bytes, not {len(data)}")
        pending = [bytes(data)]
        self.nodes[node].publish(0x3D, lambda: pending.pop() if pending else None)

    # ---- the harness as master ----

    def master_request(self, data: bytes) -> None:
        """The bus's master sends a master request (0x3C, 8 bytes, classic checksum): a
        diagnostic request, or the go-to-sleep command (first byte 0). With a schedule
        running it waits for the schedule's next MasterReq slot (a slot with nothing to send
        stays silent); without, it goes now."""
        if len(data) != 8:
            raise ValueError(f"a master request is 8 bytes, not {len(data)}")
        if self._schedule is None:
            self.bus.send_frame(0x3C, bytes(data))
        else:
            self._requests.append(bytes(data))

    def run_schedule(self, table: str) -> ScheduleTable:
        """Run one of the LDF's schedule tables from the bus's own master (when the ECU is a
        slave); it replaces any table running."""
        if self.ldf.master in self.emulated:
            raise ValueError(f"an ECU plays the master ({self.ldf.master}) and runs its own "
                             "schedule: the bus's master runs one only when the ECU is a slave "
                             f"(LinCluster(..., emulated=(its slave name,)))")  # fmt: skip
        slots = self._slots(table)
        if self._schedule is not None:
            self._schedule.stop()
        self._schedule = ScheduleTable(self.bus, slots, send=self._send_slot)
        self._schedule.start()
        return self._schedule

    def _send_slot(self, frame_id: int) -> None:
        """A schedule slot: a header; for a master request, the request waiting, if any."""
        if frame_id != 0x3C:
            self.bus.send_header(frame_id)
        elif self._requests:
            self.bus.send_frame(0x3C, self._requests.pop(0))

    def _slots(self, table: str) -> list[tuple[int, float]]:
        if table in self.ldf.unsupported_schedules:
            raise LdfError(self.ldf.unsupported_schedules[table])
        if table not in self.ldf.schedules:
            raise KeyError(f"{self.ldf.source}: no schedule table {table!r} (tables: "
                           f"{', '.join(self.ldf.schedules)})")  # fmt: skip
        return [(s.frame_id, s.delay_ms) for s in self.ldf.schedules[table]]

    def _resolve_collision(self, record: LinRecord) -> None:
        """The bus's master, after a collision on an event-triggered frame, runs its
        collision-resolving table once."""
        frame = self._frame_of(record)
        if self._schedule is None or frame is None:
            return
        if frame.kind == "event_triggered" and frame.collision_table in self.ldf.schedules:
            self._schedule.run_once(self._slots(frame.collision_table))

    # ---- what the bus carried ----

    def decoded(self, frame: str | None = None, since_ns: int = 0) -> list[LinDecoded]:
        """Good frames (status ok) from `since_ns` on, decoded; `frame` narrows to one (an
        event-triggered frame's answer counts as the associated frame it carries)."""
        if frame is not None:
            frame = self.ldf.frame(frame).name
        out = []
        for record in self.bus.records:
            if record.timestamp_ns < since_ns or record.status != "ok" or record.frame_id is None:
                continue
            carried = self._carried(record)
            if carried is not None and (frame is None or carried.name == frame):
                out.append(LinDecoded(carried.name, self.ldf.decode(carried.name, record.data),
                                      record))  # fmt: skip
        return out

    def _frame_of(self, record: LinRecord) -> LdfFrame | None:
        """The LDF's frame with the record's ID; None for a wake-up or an ID it lacks."""
        return next((f for f in self.ldf.frames.values() if f.frame_id == record.frame_id), None)

    def _carried(self, record: LinRecord) -> LdfFrame | None:
        """The frame whose signals a good record carries: its own, or for an event-triggered
        frame the associated frame byte 0 names by its protected ID (None if none does, or
        the LDF has no such frame: it stays in `bus.records`, undecoded)."""
        f = self._frame_of(record)
        if f is None or f.kind != "event_triggered":
            return f
        for name in f.associated:
            associated = self.ldf.frame(name)
            if record.data[:1] == bytes([protected_id(associated.frame_id)]):
                return associated
        return None

    def expect(self, frame: str, *, within_ms: float, **conditions: Condition) -> LinDecoded:
        """The first good `frame` from now on whose signals meet `conditions` (values, or
        predicates on them)."""
        f = self.ldf.frame(frame)
        if f.kind == "event_triggered":
            raise ValueError(f"{f.name} is an event-triggered frame: expect the frame it "
                             f"carries ({' or '.join(f.associated)})")  # fmt: skip
        unknown = sorted(set(conditions) - set(f.signals))
        if unknown:
            raise ValueError(f"{f.name} has no signal {', '.join(unknown)}; its signals: "
                             f"{', '.join(f.signals)}")  # fmt: skip
        start = self.network.now_ns

        def found() -> LinDecoded | None:
            for d in self.decoded(f.name, start):
                if all(meets(d.signals[k], c) for k, c in conditions.items()):
                    return d
            return None

        try:
            self.network.run_until(lambda: found() is not None, timeout_ms=within_ms)
        except VirtualTimeout:
            seen = [r for r in self.bus.records if r.timestamp_ns >= start
                    and r.frame_id == f.frame_id][-3:]  # fmt: skip
            last = "; last seen:\n  " + "\n  ".join(map(str, seen)) if seen else "; none seen"
            raise AssertionError(f"no {f.name} with {conditions} within {within_ms:g} ms"
                                 f"{last}") from None  # fmt: skip
        result = found()
        assert result is not None
        return result

    def expect_schedule(self, table: str, *, cycles: int = 2,
                        tolerance_ms: float = 1.0) -> list[LinRecord]:  # fmt: skip
        """The master runs `table`: `cycles` rounds of its slots in order, each header
        starting its slot's delay after the previous one (+- `tolerance_ms`, the master's
        tick). Returns the frames seen, whatever their status."""
        self._slots(table)
        if cycles < 1:
            raise ValueError(f"expect_schedule checks 1 cycle or more, not {cycles}")
        slots = self.ldf.schedules[table]
        ids = [s.frame_id for s in slots]
        start = self.network.now_ns
        need = len(slots) * cycles + 1
        period_ms = sum(s.delay_ms for s in slots)
        try:
            self.network.run_until(lambda: self._aligned(ids, start, need) is not None,
                                   timeout_ms=period_ms * (cycles + 2))  # fmt: skip
        except VirtualTimeout:
            seen = [r for r in self.bus.records if r.timestamp_ns >= start][:need]
            raise AssertionError(f"{table} did not run: frames seen were\n  "
                                 + "\n  ".join(map(str, seen))) from None  # fmt: skip
        frames = self._aligned(ids, start, need)
        assert frames is not None
        for k, (before, after) in enumerate(itertools.pairwise(frames)):
            delay = slots[k % len(slots)].delay_ms
            gap_ms = (after.start_ns - before.start_ns) / 1e6
            if not math.isclose(gap_ms, delay, abs_tol=tolerance_ms):
                raise AssertionError(f"{table}: header 0x{after.frame_id:02X} started "
                                     f"{gap_ms:.3f} ms after 0x{before.frame_id:02X}, whose slot "
                                     f"is {delay:g} ms (+- {tolerance_ms:g})")  # fmt: skip
        return frames[:-1]

    def _aligned(self, ids: list[int], start: int, need: int) -> list[LinRecord] | None:
        """`need` headers from `start` on that follow the table's order from its first slot."""
        headers = [r for r in self.bus.records if r.start_ns >= start and r.frame_id is not None]
        for i, record in enumerate(headers):
            if record.frame_id == ids[0] and len(headers) - i >= need:
                run = headers[i:i + need]
                if [r.frame_id for r in run] == [ids[k % len(ids)] for k in range(need)]:
                    return run
        return None

    # ---- inside ----

    def _plain(self) -> list[LdfFrame]:
        return [f for f in self.ldf.frames.values() if f.kind == "unconditional"]

    def _with_pid(self, frame: LdfFrame, data: bytes) -> bytes:
        """An event-triggered frame's associated frames carry their protected ID in byte 0."""
        if any(frame.name in f.associated for f in self.ldf.frames.values()):
            return bytes([protected_id(frame.frame_id)]) + data[1:]
        return data

    def _serve(self, node: LinNode) -> None:
        for frame in self.ldf.published_by(node.name):
            if frame.kind == "unconditional":
                node.publish(frame.frame_id, functools.partial(self._data.__getitem__, frame.name))
            elif frame.kind == "event_triggered":
                mine = [a for a in frame.associated if self.ldf.frame(a).publisher == node.name]
                node.publish(frame.frame_id, functools.partial(self._event, mine))

    def _event(self, frames: list[str]) -> bytes | None:
        for name in frames:
            if name in self._news:
                return self._data[name]
        return None

    def _watcher(self) -> LinNode:
        """Hears every frame: news that went out intact is no longer news."""
        watcher = LinNode("harness cluster")  # no LDF name has a space

        def heard(record: LinRecord) -> None:
            if record.status == "collision":
                self._resolve_collision(record)
            if record.status == "ok" and record.frame_id is not None:
                carried = self._carried(record)  # itself, or what an event-triggered one carried
                if carried is not None:
                    self._news.discard(carried.name)

        watcher.listeners.append(heard)
        return watcher


# The firmware's tables, as the build generates them from the LDF (harness.ldf_codegen):
# `lin_frames`, an array of {id, pid, length, direction, enhanced, kind}, a byte each, and the
# digest of everything the tables say.
FRAME_TABLE = "lin_frames"
FRAME_ENTRY = 6


def firmware_frames(machine: Machine) -> dict[int, int] | None:
    """Frame ID -> data length of the frames the firmware's generated LIN tables hold; None
    when it has none (it was not built from an LDF)."""
    symbol = machine.image.symbols.get(FRAME_TABLE)
    if symbol is None:
        return None
    table = machine.read_memory(symbol.address, symbol.size)
    entries = [table[i:i + FRAME_ENTRY] for i in range(0, len(table), FRAME_ENTRY)]
    return {e[0]: e[2] for e in entries if len(e) == FRAME_ENTRY}


def check_firmware_tables(machine: Machine, ldf: Ldf) -> None:
    """The firmware's generated LIN tables must say what `ldf` says (as its master sees it):
    a firmware built from another LDF would ignore frames, or read signals at other bits,
    without a word."""
    known = firmware_frames(machine)
    if known is None:
        return
    name = machine.image.path.name
    wrong = [f"{f.name} (ID 0x{f.frame_id:02X}, {f.length} bytes"
             + (")" if f.frame_id not in known else f"; the firmware has {known[f.frame_id]})")
             for f in ldf.frames.values() if known.get(f.frame_id) != f.length]  # fmt: skip
    if wrong:
        raise HarnessError(f"{name} was built from another LDF than {ldf.source}: its LIN "
                           f"tables do not know {', '.join(wrong)}; {REBUILD}")  # fmt: skip
    symbol = machine.image.symbols.get(ldf_codegen.DIGEST)
    if symbol is not None and machine.read_memory(symbol.address, ldf_codegen.DIGEST_SIZE) != (
            ldf_codegen.tables_digest(ldf, ldf.master)):  # fmt: skip
        raise HarnessError(f"{name} was built from another LDF than {ldf.source}: its LIN "
                           "tables have the same frames but differ in what they say of them "
                           "(signal positions, directions, checksum models, schedule "
                           f"delays); {REBUILD}")  # fmt: skip


REBUILD = ("rebuild it with the tables harness.ldf_codegen.generate() makes from this LDF "
           "(the bundled targets: Target.ldf in harness/build.py)")


def write_records(records: Iterable[LinRecord], path: str | Path, *, bus: str = "lin0") -> None:
    """A LIN recording as readable text, one frame a line: its end, ID, PID, data, checksum,
    status, publisher, and when its header began."""
    lines = [f"# LIN recording of {bus}: end (ms, virtual), frame ID, protected ID, data, "
             "checksum, status, publisher, [from the header's start]"]  # fmt: skip
    lines += [str(r) for r in records]
    Path(path).write_text("\n".join(lines) + "\n")
