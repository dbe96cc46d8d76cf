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
from harness.errors import HarnessError
from harness.frames.can import CanFrame
from harness.frames.ids import format_id, id_key
from harness.frames.timing import format_bitrate
from harness.machine import Machine
from harness.network.network import Network
from harness.replay.bitrates import BitRates, recorded_bitrates
from harness.replay.player import Lateness, ReplayOptions, TracePlayer
from harness.replay.reader import read_trace
from harness.replay.recorder import IdStats, TraceRecorder, check_output_format

BOOT_TIMEOUT_MS = 100.0
CHUNK_NS = 50_000_000  # progress is reported every 50 ms of virtual time
DEFAULT_NOMINAL_RATE, DEFAULT_DATA_RATE = 500_000, 2_000_000
# A replayed frame may wait for the frame on the bus and lose arbitration a few times, as on
# the recorded bus; later than this, the bus is not carrying the recorded traffic.
TIMING_TOLERANCE_MS = 1.0
ECU_BUSES = frozenset({"can0", "can1"})  # MCAN0 and MCAN1


class ReplayTimingError(HarnessError):
    """With strict timing: the stimulus could not be injected at its recorded times."""


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
    names: dict[int, str] = field(default_factory=dict, repr=False)  # ID key -> message
    bitrates: dict[str, tuple[BitRates, str]] = field(default_factory=dict)  # bus: rates, source
    lateness: Lateness = field(default_factory=Lateness)
    timing_warning: str | None = None
    output_warning: str | None = None
    filter_warning: str | None = None
    ecu_warning: str | None = None
    replay_load: dict[str, float] = field(default_factory=dict)  # while the stimulus played

    @property
    def warnings(self) -> list[str]:
        return [w for w in (self.filter_warning, self.ecu_warning, self.timing_warning,
                            self.output_warning) if w]  # fmt: skip

    @property
    def real_time_factor(self) -> float:
        return self.virtual_s / self.wall_s if self.wall_s else float("inf")

    @property
    def frames_per_s(self) -> float:
        """Frames on the bus (both directions) per second of wall time."""
        frames = self.frames_in + self.frames_out
        return frames / self.wall_s if self.wall_s else float("inf")

    def summary(self) -> str:
        late, rates = self.lateness, self.bitrates.items()
        lines = [
            f"trace      {self.trace}",
            f"frames     {self.frames_in} in (replayed), {self.frames_out} out (from the ECU), "
            f"{self.filtered} filtered",
            f"duration   {self.virtual_s:.3f} s virtual, {self.wall_s:.3f} s wall, "
            f"{self.real_time_factor:.1f}x real time, {self.frames_per_s:,.0f} frames/s",
            "bit rate   " + ", ".join(f"{b} {_rates(r)} ({src})" for b, (r, src) in rates),
            "bus load   " + ", ".join(
                f"{b} {self.replay_load.get(b, load):.1%} while replaying ({load:.1%} with the "
                "tail)" for b, load in self.bus_load.items()
            ),
            f"timing     stimulus started on the bus {late.mean_ns / 1e6:.3f} ms after its "
            f"recorded time on average, {late.max_ns / 1e6:.3f} ms at most",
        ]
        lines += [f"WARNING    {warning}" for warning in self.warnings]
        if self.output is not None:
            lines.append(f"output     {self.output}")
        lines.append("")
        lines.append(f"{'bus':<5} {'dir':<3} {'id':>10} {'message':<20} {'count':>7} "
                     f"{'period ms':>10} {'min':>8} {'max':>8} {'stdev':>7}")  # fmt: skip
        for (bus, ident, extended, stimulus), s in sorted(self.stats.items()):
            ident_text = format_id(id_key(ident, extended))
            period = (f"{s.mean_ms:10.3f} {s.min_ms:8.3f} {s.max_ms:8.3f} {s.stdev_ms:7.3f}"
                      if s.count > 1 else f"{'-':>10} {'-':>8} {'-':>8} {'-':>7}")  # fmt: skip
            lines.append(f"{bus:<5} {'in' if stimulus else 'out':<3} {ident_text:>10} "
                         f"{self.names.get(id_key(ident, extended), ''):<20} {s.count:>7} "
                         f"{period}")  # fmt: skip
        return "\n".join(lines)


def replay(
    trace: str | Path,
    *,
    firmware: str | Path | None = None,
    output: str | Path | None = None,
    options: ReplayOptions | None = None,
    board: Board = DEFAULT_BOARD,
    dbc: Dbc | None = None,
    bitrate: int | None = None,
    data_bitrate: int | None = None,
    tail_ms: float = 100.0,
    progress: Callable[[int, int], None] | None = None,
    timing_tolerance_ms: float = TIMING_TOLERANCE_MS,
    strict_timing: bool = False,
) -> ReplayResult:
    """Replay `trace` into `firmware` (MCAN0 on can0, MCAN1 on can1) and record the bus.

    Bit rates not given are taken from the trace where its format records them (else 500
    kbit/s and 2 Mbit/s). `tail_ms` of virtual time run on after the last replayed frame, so
    the ECU's answers to it are recorded. `progress(done_ns, total_ns)` is called as the
    replay advances; the total is the trace's span plus the tail, and grows if the bus
    falls behind the recording. A frame that starts more than `timing_tolerance_ms` after its
    recorded time is a timing warning in the result, and with `strict_timing` a
    `ReplayTimingError` that stops the replay.
    """
    options = options or ReplayOptions()
    trace = Path(trace)
    if output is not None:
        check_output_format(output, [trace])  # before the ECU boots, not after the run
    if firmware is not None and (lost := set((options.channels or {}).values()) - ECU_BUSES):
        raise HarnessError(f"the channel map sends frames to {', '.join(sorted(lost))}, where "
                           f"the ECU is not: it has MCAN0 on can0 and MCAN1 on can1")  # fmt: skip
    wall = time.perf_counter()
    net = Network()
    rates = _bus_rates(trace, options, bitrate, data_bitrate)
    for name, (bus_rates, _source) in rates.items():
        net.can_bus(name, bus_rates.nominal, bus_rates.data)
    ecu = None
    if firmware is not None:
        ecu = net.add_ecu("ECU", Machine(firmware, board), can0="can0",
                          can1="can1" if "can1" in net.buses else None)  # fmt: skip
        try:
            net.run_until_on_bus(net.can_port("ECU", "MCAN0"), timeout_ms=BOOT_TIMEOUT_MS)
        except HarnessError as err:
            raise HarnessError(f"{firmware}: {err} (replay without --firmware records the "
                               "trace alone)") from None  # fmt: skip
    tail_ns = round(tail_ms * 1e6)
    span_ns = _span_ns(trace, options) if progress is not None else 0
    player = TracePlayer(net, trace, options, on_done=net.stop)  # reads its first frames
    recorder = TraceRecorder(net, output, time_offset_s=player.time_offset_s)
    for node in player.nodes.values():
        node.sent_listeners.append(recorder.mark_stimulus)
    tolerance_ns = round(timing_tolerance_ms * 1e6)

    def report(end_ns: int | None = None) -> None:
        """The total is the span plus the tail until the last frame is out, then exact."""
        if progress is not None:
            done = net.now_ns - player.start_ns
            end = max(span_ns, done) + tail_ns if end_ns is None else end_ns - player.start_ns
            progress(done, end)

    def too_late(_frame: CanFrame) -> None:
        if player.lateness.max_ns > tolerance_ns:
            net.stop()  # at this very frame: the error names it

    if strict_timing:
        for node in player.nodes.values():
            node.sent_listeners.append(too_late)
    try:
        # In chunks, each ended early by the player once its last frame is out (net.stop)
        while not player.done and net.next_event_ns() is not None:
            net.advance_to(net.now_ns + CHUNK_NS)
            if strict_timing and player.lateness.max_ns > tolerance_ns:
                raise ReplayTimingError(_timing_problem(trace, player.lateness, rates,
                                                        timing_tolerance_ms))  # fmt: skip
            report()
        replay_ns = net.now_ns - player.start_ns
        replay_load = {name: bus.stats.load(replay_ns) for name, bus in net.buses.items()}
        tail_end = net.now_ns + tail_ns
        while net.now_ns < tail_end:
            net.advance_to(min(tail_end, net.now_ns + CHUNK_NS))
            report(tail_end)
    except BaseException:
        recorder.abort()
        raise
    recorder.close()
    warning = None
    if player.lateness.max_ns > tolerance_ns:  # (with strict timing, the loop raised already)
        warning = _timing_problem(trace, player.lateness, rates, timing_tolerance_ms)
    virtual_ns = net.now_ns - player.start_ns
    stimulus = sum(s.count for k, s in recorder.stats.items() if k[3])
    names = ({id_key(m.frame_id, m.is_extended_frame): m.name for m in dbc.database.messages}
             if dbc is not None else {})  # fmt: skip
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
        bitrates=rates,
        lateness=player.lateness,
        timing_warning=warning,
        output_warning=_flags_lost(output, recorder.fd_flags_lost),
        filter_warning=_filtered_away(player, options),
        ecu_warning=_unheard(net, player, ecu),
        replay_load=replay_load,
    )


def _filtered_away(player: TracePlayer, options: ReplayOptions) -> str | None:
    """A replay that sends nothing, a channel map naming channels the trace lacks, or several
    channels merged onto one bus, are almost always mistakes in the options (channel numbers
    differ between formats)."""
    counts = player.counts
    seen = ", ".join(sorted(map(repr, counts.trace_channels))) or "none"
    if not counts.read:
        return f"nothing was replayed: {player.trace} has no frames"
    if not counts.injected:
        return (f"nothing was replayed: the {counts.read} frames read were all filtered out "
                f"(window, IDs, channel map); the trace's channels as python-can numbers "
                f"them: {seen}")  # fmt: skip
    missing = [c for c in options.channels or {} if c not in counts.trace_channels]
    if missing:
        return (f"the channel map names channels not seen in the trace (up to the window's "
                f"end): {', '.join(map(repr, missing))} (its channels: {seen})")  # fmt: skip
    if options.channels is None and len(counts.trace_channels) > 1:
        return (f"the trace has several channels ({seen}), all replayed onto can0: map them "
                "with --channel (ReplayOptions.channels) to keep their buses apart")  # fmt: skip
    return None


def _unheard(net: Network, player: TracePlayer, ecu: Machine | None) -> str | None:
    """Stimulus on a bus whose ECU controller never went on the bus reached no ECU."""
    if ecu is None:
        return None
    for bus, controller in (("can0", "MCAN0"), ("can1", "MCAN1")):
        sent = player.counts.per_bus.get(bus, 0)
        if sent and net.can_port("ECU", controller).initialising:
            return (f"{sent} frames were replayed on {bus}, where the ECU's {controller} never "
                    "went on the bus: no ECU heard them")  # fmt: skip
    return None


def _flags_lost(output: str | Path | None, frames: int) -> str | None:
    if not frames:
        return None
    return (f"{output}: {frames} CAN FD frames lost their FD, BRS or ESI flag (the format has "
            "no column for them); ASC, BLF and candump .log keep them")


def _rates(rates: BitRates) -> str:
    if rates.data is None or rates.data == rates.nominal:
        return format_bitrate(rates.nominal)
    return f"{format_bitrate(rates.nominal)}, data {format_bitrate(rates.data)}"


def _bus_rates(trace: Path, options: ReplayOptions, bitrate: int | None,
               data_bitrate: int | None) -> dict[str, tuple[BitRates, str]]:  # fmt: skip
    """Each bus's rates: as given, else as the trace recorded them on the channels mapped to
    it (without a channel map, every channel goes to can0), else the defaults."""
    recorded = recorded_bitrates(trace) if bitrate is None or data_bitrate is None else {}
    channels: dict[str, list[int | str | None]] = {"can0": [*recorded]}
    if options.channels is not None:
        channels = {"can0": []}
        for channel, bus in options.channels.items():
            channels.setdefault(bus, []).append(channel)
    result = {}
    for bus in sorted(channels):
        found = next((recorded[c] for c in [*channels[bus], None]
                      if isinstance(c, int | None) and c in recorded), None)  # fmt: skip
        nominal, nominal_from = _pick(bitrate, found.nominal if found else None,
                                      DEFAULT_NOMINAL_RATE)  # fmt: skip
        data, data_from = _pick(data_bitrate, found.data if found else None,
                                max(DEFAULT_DATA_RATE, nominal))  # fmt: skip
        if data < nominal:
            raise HarnessError(f"{bus}: the data bit rate ({data} bit/s, {data_from}) is below "
                               f"the nominal one ({nominal} bit/s, {nominal_from}); give "
                               "--data-bitrate")  # fmt: skip
        source = (nominal_from if nominal_from == data_from
                  else f"nominal {nominal_from}, data {data_from}")  # fmt: skip
        result[bus] = (BitRates(nominal, data), source)
    return result


def _pick(given: int | None, recorded: int | None, default: int) -> tuple[int, str]:
    if given is not None:
        return given, "given"
    if recorded is not None:
        return recorded, "from the trace"
    return default, "default"


def _timing_problem(trace: Path, late: Lateness, rates: dict[str, tuple[BitRates, str]],
                    tolerance_ms: float) -> str:  # fmt: skip
    buses = ", ".join(f"{b} at {_rates(r)}" for b, (r, _s) in rates.items())
    return (f"{trace}: the bus cannot carry the recorded traffic ({buses}): {late.worst} "
            f"(tolerance {tolerance_ms:g} ms, mean {late.mean_ns / 1e6:.3f} ms). Was the trace "
            f"recorded at a higher bit rate? Give --bitrate/--data-bitrate, or --time-scale")


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
