"""Replaying a saturated bus trace into the exterior-light controller, faster than real time?

The trace: classic 8-byte frames back to back (each starts when the previous one's
intermission ends), VehicleState among other IDs, so the bus is saturated and the firmware
takes an RX interrupt for every frame (its driver accepts every ID into RX FIFO 0): frames
one per wake-up, at their recorded timestamps. Figures: the real-time factor (virtual
seconds replayed per wall second) and frames per wall second, at 500 kbit/s and 1 Mbit/s.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import can
import pytest

from harness.dbc import Dbc
from harness.network import CanFrame, Network
from harness.replay import ReplayOptions, replay

VIRTUAL_S = 0.25
INTERMISSION_BITS = 3


def saturated_trace(path: Path, bitrate: int) -> int:
    """Write `VIRTUAL_S` of back-to-back frames at `bitrate`; returns the frame count."""
    dbc = Dbc.load()
    bus = Network().can_bus("timing", bitrate)
    t_ns, count = 0, 0
    with can.Logger(str(path)) as log:
        while t_ns < VIRTUAL_S * 1e9:
            if count % 10 == 0:
                brake = "Pressed" if count % 400 < 200 else "Released"
                frame = dbc.encode("VehicleState", Speed=count % 200, BrakePedal=brake)
            else:
                frame = CanFrame(0x200 + count % 50, bytes([count % 256] * 8))
            msg = frame.to_message()
            msg.timestamp, msg.channel = t_ns / 1e9, 0
            log.on_message_received(msg)
            t_ns += bus.duration_ns(frame) + INTERMISSION_BITS * 1_000_000_000 // bitrate
            count += 1
    return count


@pytest.mark.parametrize("bitrate", [500_000, 1_000_000])
def test_replay_saturated_trace(
    benchmark: Any, firmware: dict[str, Path], tmp_path: Path, bitrate: int
) -> None:
    trace = tmp_path / f"saturated-{bitrate}.log"
    frames = saturated_trace(trace, bitrate)
    options = ReplayOptions(exclude_ids=Dbc.load().sent_by("ELC"))
    results = []

    def run() -> None:
        elc, data_bitrate = ((firmware["elc"], 2_000_000) if bitrate == 500_000
                             else (firmware["elc_1m"], 4_000_000))  # built for that bus
        results.append(replay(trace, firmware=elc, options=options, bitrate=bitrate,
                              data_bitrate=data_bitrate, tail_ms=0))  # fmt: skip

    benchmark.pedantic(run, rounds=3, iterations=1)
    result = results[-1]
    assert result.frames_in == frames  # every frame of the trace reached the bus
    assert result.bus_load["can0"] > 0.9  # saturated (the ECU's own frames add to the queue)
    if not getattr(benchmark, "stats", None):
        return  # --benchmark-disable (make test): the replay ran once as a smoke test
    median = float(benchmark.stats.stats.median)
    benchmark.extra_info.update(
        frames=frames,
        virtual_s=round(result.virtual_s, 3),
        real_time_factor=round(result.virtual_s / median, 2),
        frames_per_s=round((result.frames_in + result.frames_out) / median),
        bus_load=round(result.bus_load["can0"], 3),
    )


@pytest.mark.parametrize("backlog", [1_000, 8_000])
def test_replay_backlog(benchmark: Any, tmp_path: Path, backlog: int) -> None:
    """A trace the bus cannot carry: every frame recorded at the same instant, so the queue
    holds the whole trace. The cost per frame must not grow with the backlog (the figure to
    compare is us_per_frame between the two sizes)."""
    trace = tmp_path / "burst.log"
    with can.Logger(str(trace)) as log:
        for i in range(backlog):
            log.on_message_received(can.Message(timestamp=1.0, arbitration_id=0x100 + i % 64,
                                                data=bytes(8), is_extended_id=False, channel=0))
    results = []

    def run() -> None:
        results.append(replay(trace, bitrate=500_000, data_bitrate=2_000_000, tail_ms=0))

    benchmark.pedantic(run, rounds=3, iterations=1)
    assert results[-1].frames_in == backlog
    assert results[-1].lateness.max_ns > 0.9 * results[-1].virtual_s * 1e9  # all queued at once
    if getattr(benchmark, "stats", None):
        median = float(benchmark.stats.stats.median)
        benchmark.extra_info.update(frames=backlog, us_per_frame=round(median / backlog * 1e6, 1))


@pytest.mark.parametrize("suffix", [".asc", ".blf", ".log"])
def test_replay_by_trace_format(
    benchmark: Any, firmware: dict[str, Path], tmp_path: Path, suffix: str
) -> None:
    """The saturated 1 Mbit/s trace in each format python-can writes: the replay's time beside
    python-can's own time to read the file (measured in the same run), and the real-time
    factor."""
    trace = tmp_path / f"saturated{suffix}"
    frames = saturated_trace(trace, 1_000_000)
    options = ReplayOptions(exclude_ids=Dbc.load().sent_by("ELC"))
    results = []

    def run() -> None:
        results.append(replay(trace, firmware=firmware["elc_1m"], options=options,
                              bitrate=1_000_000, data_bitrate=4_000_000, tail_ms=0))  # fmt: skip

    benchmark.pedantic(run, rounds=3, iterations=1)
    assert results[-1].frames_in == frames
    if not getattr(benchmark, "stats", None):
        return
    reads = []
    for _ in range(3):
        start = time.perf_counter()
        assert sum(1 for _ in can.LogReader(str(trace))) == frames
        reads.append(time.perf_counter() - start)
    median = float(benchmark.stats.stats.median)
    benchmark.extra_info.update(
        frames=frames,
        python_can_read_ms=round(statistics.median(reads) * 1e3, 1),
        ratio_to_python_can_read=round(median / statistics.median(reads), 1),
        real_time_factor=round(results[-1].virtual_s / median, 2),
    )
