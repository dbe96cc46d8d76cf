"""Inject a recorded trace into a network at its recorded times, in virtual time.

The player queues a few milliseconds of the trace at a time in its nodes, each frame
requested at its due time, and keeps one deadline on the network's clock to queue the next
few, so a trace of any length streams through in constant memory and Python wakes once per
batch, not once per frame. Recorded timestamps mark a frame's end, as
loggers stamp frames (and as the recorder writes them): each frame is queued so that, on an
idle bus, it ends at its recorded time (relative to the first frame, scaled by
`time_scale`), and a replay of a replay keeps the timestamps. If the bus is busy it waits
for arbitration like any node's frame. How late each frame started on the bus
against its recorded time is measured (`lateness`): a bus slower than the recording's, or
a backlog, shows there.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from harness.frames.can import CanFrame
from harness.frames.ids import format_id, id_key, normalise
from harness.network.can import PythonNode
from harness.network.network import Network
from harness.replay.reader import TraceError, TraceFrame, read_trace

LOOP_GAP_NS = 1_000_000  # between the end of one pass of a looped trace and the next
REFILL_NS = 5_000_000  # how far ahead of virtual time each batch queues the trace


@dataclass(frozen=True)
class ReplayOptions:
    """What of a trace to replay, and how.

    `start_s` / `stop_s`: a window in trace time, seconds after the trace's first frame.
    `ids`: only these IDs (None: all); `exclude_ids`: never these (e.g. what the ECU itself
    sent in the recording). IDs are keys of `harness.frames.ids`: 0x600 is the standard ID,
    0x600 | EXTENDED the extended one; a plain number above 0x7FF is extended.
    `channels`: trace channel -> bus name; channels not in it are skipped (None: every frame
    goes to the network's first bus). `time_scale` stretches the recorded intervals (0.5:
    twice as dense). `loops`: passes over the trace.
    """

    time_scale: float = 1.0
    start_s: float = 0.0
    stop_s: float | None = None
    ids: frozenset[int] | None = None
    exclude_ids: frozenset[int] = frozenset()
    channels: Mapping[int | str, str] | None = None
    loops: int = 1

    def __post_init__(self) -> None:
        if self.time_scale <= 0:
            raise ValueError(f"time_scale must be positive, not {self.time_scale}")
        if self.loops < 1:
            raise ValueError(f"loops must be at least 1, not {self.loops}")
        if self.ids is not None:
            object.__setattr__(self, "ids", frozenset(map(normalise, self.ids)))
        object.__setattr__(self, "exclude_ids", frozenset(map(normalise, self.exclude_ids)))
        if self.stop_s is not None and self.stop_s < self.start_s:
            raise ValueError(f"the window ends ({self.stop_s} s) before it starts "
                             f"({self.start_s} s)")  # fmt: skip


@dataclass
class PlayerCounts:
    read: int = 0  # frames read from the trace (all passes)
    injected: int = 0  # queued into the nodes (up to REFILL_NS ahead of being due)
    filtered: int = 0  # outside the window, the ID filters or the channel map
    trace_channels: set[int | str | None] = field(default_factory=set)  # as python-can reads them
    per_bus: dict[str, int] = field(default_factory=dict)  # frames queued onto each bus


@dataclass
class Lateness:
    """How long after its recorded time each replayed frame started on the bus (its SOF)."""

    frames: int = 0
    total_ns: int = 0
    max_ns: int = 0
    worst: str = ""  # which frame was latest, for messages

    @property
    def mean_ns(self) -> float:
        return self.total_ns / self.frames if self.frames else 0.0


class TracePlayer:
    def __init__(self, network: Network, trace: str | Path, options: ReplayOptions,
                 on_done: Callable[[], None] | None = None) -> None:  # fmt: skip
        """`on_done` is called at the moment the last frame has left its node (`done`): a
        replay's run calls `Network.stop` there."""
        if not network.buses:
            raise ValueError("the network has no bus to replay onto")
        unknown = set((options.channels or {}).values()) - set(network.buses)
        if unknown:
            raise ValueError(f"channel map names buses the network does not have: "
                             f"{', '.join(sorted(unknown))} "
                             f"(it has {', '.join(network.buses)})")  # fmt: skip
        self.network = network
        self.trace = Path(trace)
        self.options = options
        self.on_done = on_done
        self.counts = PlayerCounts()
        self.nodes = {name: PythonNode(f"replay:{name}", bus, keep=False, hears=False)
                      for name, bus in network.buses.items()}  # fmt: skip
        self.lateness = Lateness()
        # per bus, in queue order: (ideal start, the frame's recorded time)
        self._scheduled: dict[str, deque[tuple[int, float]]] = {n: deque() for n in self.nodes}
        for name, node in self.nodes.items():
            node.sent_listeners.append(partial(self._started, name))
        self.start_ns = network.now_ns
        self.first_time_s: float | None = None  # the trace's first timestamp, once read
        # From the replay's start to the first replayed frame's timestamp (its length), once
        # it is read: where its recorded time falls in virtual time.
        self.anchor_ns = 0
        # No frame takes longer: how far ahead of a frame another can be due (read-ahead).
        self._horizon_ns = max(bus.longest_frame_ns() for bus in network.buses.values())
        self._frames = self._schedule()
        self._read_end = 0  # the recorded end of the last frame read from the trace
        self._exhausted = False
        self._deadline = network.clock.deadline(self._refill)
        self._refill()

    @property
    def done(self) -> bool:
        """Every frame was injected and has left its node's queue."""
        return self._exhausted and not any(n.queue for n in self.nodes.values())

    def _bus_for(self, record: TraceFrame) -> str | None:
        channels = self.options.channels
        if channels is None:
            return next(iter(self.network.buses))
        if record.channel is not None and record.channel in channels:
            return channels[record.channel]
        return channels.get(str(record.channel))

    def _schedule(self) -> Iterator[tuple[int, int, str, CanFrame, float]]:
        """(recorded end, ideal start, bus, frame, recorded time) in file order. Ideally a
        frame starts so that it ends at its recorded time."""
        o = self.options
        offset = self.start_ns
        window_start_us = round(o.start_s * 1e6)
        window_stop_us = None if o.stop_s is None else round(o.stop_s * 1e6)
        for _ in range(o.loops):
            first: float | None = None
            last_end = offset  # the latest end so far, any bus
            bus_end = dict.fromkeys(self.nodes, offset)  # the last end per bus
            for record in read_trace(self.trace):
                self.counts.read += 1
                self.counts.trace_channels.add(record.channel)
                if first is None:
                    first = record.time_s
                    if self.first_time_s is None:
                        self.first_time_s = first
                relative = round((record.time_s - first) * 1e9)  # ns
                if relative < 0:
                    raise TraceError(f"{self.trace}: frame {self.counts.read} at "
                                     f"{record.time_s:.6f} s is before the trace's first frame "
                                     f"({first:.6f} s)")  # fmt: skip
                # The window in whole µs, the finest a text trace records: 50.05 - 50.0 is
                # 0.04999... in floats (epoch times are coarser still), and a window at 0.05 s
                # must keep the frame recorded at 0.05 s.
                in_window_us = round((record.time_s - first) * 1e6)
                key = id_key(record.frame.arbitration_id, record.frame.is_extended)
                if in_window_us < window_start_us or (o.ids is not None and key not in o.ids):
                    self.counts.filtered += 1
                    continue
                if window_stop_us is not None and in_window_us > window_stop_us:
                    break
                bus = self._bus_for(record)
                if bus is None or key in o.exclude_ids:
                    self.counts.filtered += 1
                    continue
                stamp_after = self.network.buses[bus].stamp_after_ns(record.frame)
                if not self.anchor_ns:
                    self.anchor_ns = stamp_after
                end = offset + round((relative - window_start_us * 1000) * o.time_scale)
                end += self.anchor_ns
                # On one bus time never goes back; loggers of several buses may write frames
                # of different buses slightly out of order (less than a frame apart).
                if end < bus_end[bus] or end < last_end - self._horizon_ns:
                    raise TraceError(f"{self.trace}: frame {self.counts.read} at "
                                     f"{record.time_s:.6f} s goes back in time")  # fmt: skip
                bus_end[bus] = end
                last_end = max(last_end, end)
                ideal = end - stamp_after  # (before the start, for a longer frame just after
                # the first: it starts at once and counts as late)
                yield end, ideal, bus, record.frame, record.time_s
            offset = last_end + LOOP_GAP_NS

    def _refill(self) -> None:
        """Queue every frame that may be due before `REFILL_NS` from now, each requested at
        its ideal start (or after the previous frame of its bus: each bus keeps the trace's
        order, a frame that would start before the previous one, being longer, queues behind
        it; across buses frames are independent). Frames are read until none still unread
        could be due by then: an unread frame ends no earlier than a frame's length before the
        latest end read (out-of-order buses), so starts no earlier than two lengths before it.
        The next batch is queued when virtual time reaches that bound."""
        now = self.network.now_ns
        while not self._exhausted and self._read_end - 2 * self._horizon_ns <= now + REFILL_NS:
            item = next(self._frames, None)
            if item is None:
                self._exhausted = True
                break
            end, ideal, bus, frame, recorded_s = item
            self._read_end = max(self._read_end, end)
            queue = self.nodes[bus].queue
            self.nodes[bus].send(frame, max(ideal, queue[-1][0]) if queue else ideal)
            self._scheduled[bus].append((ideal, recorded_s))
            self.counts.injected += 1
            self.counts.per_bus[bus] = self.counts.per_bus.get(bus, 0) + 1
        if not self._exhausted:
            self._deadline.arm_at(self._read_end - 2 * self._horizon_ns)
        elif self.done and self.on_done is not None:
            self.on_done()

    @property
    def time_offset_s(self) -> float:
        """Trace time minus virtual time (s) for frame timestamps: where the first replayed
        frame ends (its timestamp) is its recorded time, window start included."""
        origin_s = (self.first_time_s or 0.0) + self.options.start_s
        return origin_s - (self.start_ns + self.anchor_ns) / 1e9

    def _started(self, bus: str, frame: CanFrame) -> None:
        ideal, recorded_s = self._scheduled[bus].popleft()
        late = self.network.buses[bus].started_ns(frame) - ideal
        if self.on_done is not None and self.done:
            self.on_done()
        timing = self.lateness
        timing.frames += 1
        timing.total_ns += late
        if late > timing.max_ns:
            timing.max_ns = late
            ident = format_id(id_key(frame.arbitration_id, frame.is_extended))
            timing.worst = (f"ID {ident} recorded at {recorded_s:.6f} s started "
                            f"{late / 1e6:.3f} ms late on {bus}")  # fmt: skip
