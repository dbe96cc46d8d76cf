"""Everything on a network's buses, as a trace file and as streaming statistics.

The recorder is a listening node on each bus. Frames go straight to python-can's writer for
the file's suffix (ASC, BLF, CSV, TRC, candump .log, SQLite .db), with the bus's index as the
channel and virtual timestamps (plus `time_offset_s`, to line the output up with the input
trace). Per-ID statistics are running sums, so memory stays flat however long the run.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import can
from can.io.logger import MESSAGE_WRITERS

from harness.frames.can import CanFrame
from harness.network.can import PythonNode
from harness.network.network import Network
from harness.replay.reader import TraceError, trace_suffix


@dataclass
class IdStats:
    """Count and inter-frame intervals of one ID in one direction (Welford's running sums)."""

    count: int = 0
    last_ns: int = 0
    mean_ms: float = 0.0
    m2: float = 0.0
    min_ms: float = math.inf
    max_ms: float = 0.0

    def add(self, at_ns: int) -> None:
        if self.count:
            gap = (at_ns - self.last_ns) / 1e6
            n = self.count  # intervals so far + 1
            delta = gap - self.mean_ms
            self.mean_ms += delta / n
            self.m2 += delta * (gap - self.mean_ms)
            self.min_ms, self.max_ms = min(self.min_ms, gap), max(self.max_ms, gap)
        self.count += 1
        self.last_ns = at_ns

    @property
    def stdev_ms(self) -> float:
        return math.sqrt(self.m2 / (self.count - 2)) if self.count > 2 else 0.0


BLF_EARLIEST_DATE_S = 631_152_000  # 1990-01-01: python-can's BLF writer stores no date before
NO_FD_FORMATS = (".trc",)  # python-can's TRC writer drops CAN FD frames without a word
NO_FD_FLAG_FORMATS = (".csv", ".db")  # keep the bytes of FD frames, not the FD and BRS flags


def check_output_format(path: str | Path, inputs: Iterable[str | Path] = ()) -> None:
    """Refuse, before anything runs, an output python-can cannot write, one that cannot hold
    what the buses carry (they are CAN FD buses, and python-can's TRC writer silently drops
    every FD frame), one in a directory that does not exist, or one of the `inputs`."""
    path = Path(path)
    suffix = trace_suffix(path)
    if suffix not in MESSAGE_WRITERS:
        raise TraceError(f"{path}: cannot write {suffix or 'a file without a suffix'!r}; "
                         f"python-can writes {', '.join(sorted(MESSAGE_WRITERS))} (text "
                         "formats also .gz)")  # fmt: skip
    if suffix in NO_FD_FORMATS:
        raise TraceError(f"{path}: {suffix} output cannot hold CAN FD frames (python-can's "
                         "writer drops them); write .asc, .blf or .log instead")  # fmt: skip
    if suffix == ".mf4" and importlib.util.find_spec("asammdf") is None:
        raise TraceError(f"{path}: MF4 needs python-can's mf4 extra "
                         "(pip install 'python-can[mf4]')")  # fmt: skip
    if not path.parent.is_dir():
        raise TraceError(f"{path}: the directory {path.parent} does not exist")
    if path.is_dir():
        raise TraceError(f"{path}: is a directory; name a file to write")
    for source in inputs:
        if path.exists() and path.resolve() == Path(source).resolve():
            raise TraceError(f"{path}: is the trace being replayed; write the output elsewhere")


class TraceRecorder:
    """Writes to a hidden file beside `path` and renames it at `close()`: an output is whole
    or absent, never half a run. `abort()` removes it."""

    def __init__(self, network: Network, path: str | Path | None = None,
                 time_offset_s: float = 0.0) -> None:  # fmt: skip
        self.path = Path(path) if path is not None else None
        self.time_offset_s = time_offset_s
        self.writer: can.Listener | None = None
        self.fd_flags_lost = 0  # FD frames written to a format without their FD / BRS / ESI
        suffix = trace_suffix(self.path) if self.path is not None else ""
        self._loses_fd_flags = suffix in NO_FD_FLAG_FORMATS
        self._partial: Path | None = None
        if self.path is not None:
            check_output_format(self.path)
            self._partial = self.path.with_name(f".partial-{self.path.name}")
            try:
                self.writer = can.Logger(str(self._partial))
            except (ValueError, ImportError, OSError) as err:
                raise TraceError(f"{self.path}: cannot write this trace: {err}") from err
            self._keep_time_base(self.writer)
        # (bus, ID, extended, from the stimulus) -> stats
        self.stats: dict[tuple[str, int, bool, bool], IdStats] = {}
        self._stimulus: CanFrame | None = None
        self._channels = {name: index for index, name in enumerate(network.buses)}
        for name, bus in network.buses.items():
            PythonNode(f"recorder:{name}", bus, keep=False).listeners.append(self._tap(name))

    def _keep_time_base(self, writer: can.Listener) -> None:
        """Frames keep the input trace's time base in every format. python-can's ASC writer
        counts from its first event: make that event time 0. Its BLF writer stores the first
        frame's time as a calendar date, and drops it for times before 1990 (a trace whose
        time counts from its start): count those from 0, which BLF readers take as no date."""
        if isinstance(writer, can.ASCWriter):
            writer.log_event("Start of virtual time", timestamp=0.0)
        elif isinstance(writer, can.BLFWriter) and self.time_offset_s < BLF_EARLIEST_DATE_S:
            writer.start_timestamp = 0.0

    def _tap(self, bus: str) -> Callable[[CanFrame], None]:
        return lambda frame: self._record(bus, frame)

    def mark_stimulus(self, frame: CanFrame) -> None:
        """The next delivery of this very frame object came from the replayed trace."""
        self._stimulus = frame

    def _record(self, bus: str, frame: CanFrame) -> None:
        stimulus = frame is self._stimulus
        key = (bus, frame.arbitration_id, frame.is_extended, stimulus)
        stats = self.stats.get(key)
        if stats is None:
            stats = self.stats[key] = IdStats()
        stats.add(frame.timestamp_ns)
        if self.writer is not None:
            msg = frame.to_message()
            msg.timestamp = self.time_offset_s + frame.timestamp_ns / 1e9
            msg.channel = self._channels[bus]
            msg.is_rx = stimulus  # the ECU's own frames are its transmissions
            self.writer.on_message_received(msg)
            # read back, an FD frame of 8 bytes or less is a classic one; BRS and ESI are gone
            if self._loses_fd_flags and frame.is_fd and (len(frame.data) <= 8 or frame.brs
                                                         or frame.esi):  # fmt: skip
                self.fd_flags_lost += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.stop()
            self.writer = None
            if self._partial is not None and self.path is not None:
                try:
                    self._partial.replace(self.path)
                except OSError as err:
                    self._partial.unlink(missing_ok=True)
                    raise TraceError(f"{self.path}: cannot write: {err.strerror}") from err

    def abort(self) -> None:
        """Stop without an output: the run failed, and half a trace is not one."""
        if self.writer is not None:
            self.writer.stop()
            self.writer = None
        if self._partial is not None:
            self._partial.unlink(missing_ok=True)
