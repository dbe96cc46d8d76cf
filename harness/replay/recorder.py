"""Everything on a network's buses, as a trace file and as streaming statistics.

The recorder is a listening node on each bus. Frames go straight to python-can's writer for
the file's suffix (ASC, BLF, CSV, TRC, candump .log, SQLite .db), with the bus's index as the
channel and virtual timestamps (plus `time_offset_s`, to line the output up with the input
trace). Per-ID statistics are running sums, so memory stays flat however long the run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import can

from harness.network.can import PythonNode
from harness.network.frames import CanFrame
from harness.network.network import Network
from harness.replay.reader import TraceError


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


def check_output_format(path: str | Path) -> None:
    """Refuse, before anything runs, an output format that cannot hold what the buses carry:
    they are CAN FD buses, and python-can's TRC writer silently drops every FD frame."""
    suffix = _format_suffix(Path(path))
    if suffix in NO_FD_FORMATS:
        raise TraceError(f"{path}: {suffix} output cannot hold CAN FD frames (python-can's "
                         "writer drops them); write .asc, .blf or .log instead")  # fmt: skip


def _format_suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    return suffixes[-1] if suffixes else ""


class TraceRecorder:
    def __init__(self, network: Network, path: str | Path | None = None,
                 time_offset_s: float = 0.0) -> None:  # fmt: skip
        self.path = Path(path) if path is not None else None
        self.time_offset_s = time_offset_s
        self.writer: can.Listener | None = None
        self.fd_flags_lost = 0  # FD frames written to a format without the FD / BRS flags
        suffix = _format_suffix(self.path) if self.path is not None else ""
        self._loses_fd_flags = suffix in NO_FD_FLAG_FORMATS
        if self.path is not None:
            check_output_format(self.path)
            try:
                self.writer = can.Logger(str(self.path))
            except ValueError as err:  # python-can: unknown suffix, or no gzip for it
                raise TraceError(f"{self.path}: cannot write this trace format: {err}") from err
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
            if frame.is_fd and self._loses_fd_flags:
                self.fd_flags_lost += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.stop()
            self.writer = None
