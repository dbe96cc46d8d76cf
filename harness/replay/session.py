"""One replay: a trace into an emulated ECU (or none), the bus recorded, a summary.

result = replay("drive.asc", firmware="build/firmware/elc.elf", output="out.blf")
print(result.summary())
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.board import Board
from harness.boards import DEFAULT_BOARD
from harness.dbc import Dbc
from harness.machine import Machine
from harness.network.network import Network
from harness.replay.player import ReplayOptions, TracePlayer
from harness.replay.reader import read_trace
from harness.replay.recorder import IdStats, TraceRecorder, check_output_format

BOOT_TIMEOUT_MS = 100.0
CHUNK_NS = 50_000_000  # progress is reported every 50 ms of virtual time


@dataclass
class ReplayResult:
    trace: Path
    output: Path | None
    frames_in: int
    frames_out: int
    filtered: int
    virtual_s: float
    wall_s: float
    bus_load: dict[str, float]
    stats: dict[tuple[str, int, bool, bool], IdStats] = field(repr=False)
    names: dict[int, str] = field(default_factory=dict, repr=False)

    @property
    def real_time_factor(self) -> float:
        return self.virtual_s / self.wall_s if self.wall_s else float("inf")

    def summary(self) -> str:
        lines = [
            f"trace      {self.trace}",
            f"frames     {self.frames_in} in (replayed), {self.frames_out} out (from the ECU), "
            f"{self.filtered} filtered",
            f"duration   {self.virtual_s:.3f} s virtual, {self.wall_s:.3f} s wall, "
            f"{self.real_time_factor:.1f}x real time",
            "bus load   " + ", ".join(f"{b} {load:.1%}" for b, load in self.bus_load.items()),
        ]
        if self.output is not None:
            lines.append(f"output     {self.output}")
        lines.append("")
        lines.append(f"{'bus':<5} {'dir':<3} {'id':>10} {'message':<20} {'count':>7} "
                     f"{'period ms':>10} {'min':>8} {'max':>8} {'stdev':>7}")  # fmt: skip
        for (bus, ident, extended, stimulus), s in sorted(self.stats.items()):
            ident_text = f"{ident:08X}x" if extended else f"{ident:03X}"
            period = (f"{s.mean_ms:10.3f} {s.min_ms:8.3f} {s.max_ms:8.3f} {s.stdev_ms:7.3f}"
                      if s.count > 1 else f"{'-':>10} {'-':>8} {'-':>8} {'-':>7}")  # fmt: skip
            lines.append(f"{bus:<5} {'in' if stimulus else 'out':<3} {ident_text:>10} "
                         f"{self.names.get(ident, ''):<20} {s.count:>7} {period}")  # fmt: skip
        return "\n".join(lines)


def replay(
    trace: str | Path,
    *,
    firmware: str | Path | None = None,
    output: str | Path | None = None,
    options: ReplayOptions | None = None,
    board: Board = DEFAULT_BOARD,
    dbc: Dbc | None = None,
    bitrate: int = 500_000,
    data_bitrate: int = 2_000_000,
    tail_ms: float = 100.0,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayResult:
    """Replay `trace` into `firmware` (MCAN0 on can0, MCAN1 on can1) and record the bus.

    `tail_ms` of virtual time run on after the last replayed frame, so the ECU's answers to
    it are recorded. `progress(done_ns, total_ns)` is called as the replay advances (the
    total is the trace's span, known after a first pass over the file).
    """
    options = options or ReplayOptions()
    trace = Path(trace)
    if output is not None:
        check_output_format(output)  # before the ECU boots, not after the run
    wall = time.perf_counter()
    net = Network()
    for name in sorted(set((options.channels or {}).values()) | {"can0"}):
        net.can_bus(name, bitrate, data_bitrate)
    if firmware is not None:
        ecu = net.add_ecu("ECU", Machine(firmware, board), can0="can0",
                          can1="can1" if "can1" in net.buses else None)  # fmt: skip
        mcan = ecu.peripheral("MCAN0")
        net.run_until(lambda: not mcan.initialising,  # type: ignore[attr-defined]
                      timeout_ms=BOOT_TIMEOUT_MS)  # fmt: skip
    total_ns = _span_ns(trace, options) if progress is not None else 0
    player = TracePlayer(net, trace, options)  # reads up to the first frame it will send
    origin_s = (player.first_time_s or 0.0) + options.start_s
    recorder = TraceRecorder(net, output, time_offset_s=origin_s - player.start_ns / 1e9)
    for node in player.nodes.values():
        node.sent_listeners.append(recorder.mark_stimulus)
    try:
        report_at = net.now_ns + CHUNK_NS
        while not player.done and net.step():
            if progress is not None and net.now_ns >= report_at:
                progress(min(net.now_ns - player.start_ns, total_ns), total_ns)
                report_at = net.now_ns + CHUNK_NS
        net.run_for(ms=tail_ms)
    finally:
        recorder.close()
    virtual_ns = net.now_ns - player.start_ns
    stimulus = sum(s.count for k, s in recorder.stats.items() if k[3])
    names = {m.frame_id: m.name for m in dbc.database.messages} if dbc is not None else {}
    return ReplayResult(
        trace=trace,
        output=Path(output) if output is not None else None,
        frames_in=stimulus,
        frames_out=sum(s.count for k, s in recorder.stats.items() if not k[3]),
        filtered=player.counts.filtered,
        virtual_s=virtual_ns / 1e9,
        wall_s=time.perf_counter() - wall,
        bus_load={name: bus.stats.load(virtual_ns) for name, bus in net.buses.items()},
        stats=recorder.stats,
        names=names,
    )


def _span_ns(trace: Path, options: ReplayOptions) -> int:
    """The replay's length in virtual time: one quick pass over the file."""
    first = last = None
    for record in read_trace(trace):
        first = record.time_s if first is None else first
        last = record.time_s
    if first is None or last is None:
        return 0
    end = last - first if options.stop_s is None else min(options.stop_s, last - first)
    span = max(0.0, end - options.start_s) * options.time_scale
    return round(span * 1e9 * options.loops)
