"""Replay timing: the stimulus is injected at its recorded times or the replay says how late
it was; bit rates come from the trace where the format records them."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli import harness

from harness.dbc import Dbc
from harness.errors import HarnessError
from harness.replay import ReplayOptions, TraceError, read_trace, replay
from harness.replay.bitrates import BitRates, recorded_bitrates, vector_bit_timing_rate
from harness.replay.session import ReplayTimingError

# Vector bit-timing words (from the low byte: clock MHz, prescaler, quanta per bit, sample %)
ARB_1M = 0x46_50_01_50  # 80 MHz / (1 x 80) = 1 Mbit/s
DATA_4M = 0x4B_14_01_50  # 80 MHz / (1 x 20) = 4 Mbit/s
SPACING_US = 80  # an 8-byte FD frame with BRS lasts ~55 us at 1M/4M, ~110 us at 500k/2M


def fast_recording(path: Path, frames: int = 200, timing: tuple[int, int] = (ARB_1M, DATA_4M),
                   gz: bool = False) -> Path:  # fmt: skip
    """A CANoe-style ASC recording of a busy 1 Mbit/s / 4 Mbit/s CAN FD bus."""
    lines = ["date Tue Dec 1 10:00:00.000 2026", "base hex  timestamps absolute",
             "internal events logged", "// version 13.0.0",
             "Begin Triggerblock Tue Dec 1 10:00:00.000 2026",
             "   0.000000 Start of measurement"]  # fmt: skip
    for i in range(frames):
        data = " ".join(f"{(i + k) % 256:02x}" for k in range(8))
        trailer = f"55000 120 303000 e0006659 {timing[0]:08x} {timing[1]:08x} 20011736 2001040d"
        lines.append(f"{1 + i * SPACING_US / 1e6:11.6f} CANFD   1 Rx        {0x100 + i % 8:x}"
                     f"                                   1 0 8  8 {data}   {trailer}")  # fmt: skip
    lines.append("End TriggerBlock")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_vector_bit_timing_words_decode_to_rates() -> None:
    # the words in python-can's own sample logs: 500 kbit/s arbitration, 2 and 4 Mbit/s data
    assert vector_bit_timing_rate(0x46500250) == 500_000
    assert vector_bit_timing_rate(0x4B140250) == 2_000_000
    assert vector_bit_timing_rate(0x460A0250) == 4_000_000
    assert vector_bit_timing_rate(0) is None  # python-can's ASC writer leaves them zero


def test_rates_are_read_from_asc_and_trc_headers(tmp_path: Path) -> None:
    assert recorded_bitrates(fast_recording(tmp_path / "fast.asc")) == {
        0: BitRates(1_000_000, 4_000_000)
    }
    trc = tmp_path / "peak.trc"
    trc.write_text(";$FILEVERSION=2.0\n;$STARTTIME=44548.6\n;$COLUMNS=N,O,T,I,d,l,D\n"
                   ";-------\n;   Connection                 Bit rate\n"
                   ";   PCAN-USB FD                250 kbit/s\n;-------\n"
                   "      1         1.000 DT 0100 Rx 2  01 02\n")  # fmt: skip
    assert recorded_bitrates(trc) == {None: BitRates(250_000)}


def test_a_recording_replays_at_the_bit_rates_it_was_recorded_at(tmp_path: Path) -> None:
    result = replay(fast_recording(tmp_path / "fast.asc"), tail_ms=0)
    assert result.bitrates["can0"] == (BitRates(1_000_000, 4_000_000), "from the trace")
    assert result.timing_warning is None
    assert result.lateness.frames == 200
    assert result.lateness.max_ns == 0  # every frame found the bus idle at its time
    assert "can0 1 Mbit/s, data 4 Mbit/s (from the trace)" in result.summary()


def test_a_bus_too_slow_for_the_recording_is_reported(tmp_path: Path) -> None:
    """At 500 kbit/s the frames pile up: the replay says how late they were and why."""
    result = replay(fast_recording(tmp_path / "fast.asc"), bitrate=500_000,
                    data_bitrate=2_000_000, tail_ms=0)  # fmt: skip
    late = result.lateness
    assert late.frames == 200
    # each frame needs ~30 us more than the recording left it: the last starts ~6 ms late
    assert 4e6 < late.max_ns < 8e6 and 0 < late.mean_ns < late.max_ns
    assert result.timing_warning is not None
    assert "cannot carry the recorded traffic" in result.timing_warning
    assert "can0 at 500 kbit/s, data 2 Mbit/s" in result.timing_warning
    assert "WARNING" in result.summary() and "ms at most" in result.summary()


def test_strict_timing_stops_the_replay_at_the_first_frame_too_late(tmp_path: Path) -> None:
    trace = fast_recording(tmp_path / "fast.asc")
    with pytest.raises(ReplayTimingError, match=r"ID 0x1.. recorded at 1\.\d+ s started"):
        replay(trace, bitrate=500_000, data_bitrate=2_000_000, strict_timing=True)
    # a looser tolerance lets it through
    result = replay(trace, bitrate=500_000, data_bitrate=2_000_000, strict_timing=True,
                    timing_tolerance_ms=10.0, tail_ms=0)  # fmt: skip
    assert result.frames_in == 200


def test_progress_total_is_the_real_end(tmp_path: Path) -> None:
    """A late replay runs past the recorded span, then the tail: the last report is 100 %."""
    calls: list[tuple[int, int]] = []
    result = replay(fast_recording(tmp_path / "fast.asc", frames=2000), bitrate=500_000,
                    data_bitrate=2_000_000, tail_ms=20,
                    progress=lambda done, total: calls.append((done, total)))  # fmt: skip
    assert calls and all(done <= total for done, total in calls)
    assert calls[-1][0] == calls[-1][1] == round(result.virtual_s * 1e9)
    assert result.virtual_s > 2000 * SPACING_US / 1e6 + 0.020  # later than recorded


def test_summary_reports_frames_per_second(tmp_path: Path) -> None:
    result = replay(fast_recording(tmp_path / "fast.asc"), tail_ms=0)
    assert result.frames_per_s > 0
    assert f"{result.frames_per_s:,.0f} frames/s" in result.summary()


def test_cli_warns_and_fails_under_strict_timing(tmp_path: Path) -> None:
    trace = str(fast_recording(tmp_path / "fast.asc"))
    loose = harness("replay", trace, "--bitrate", "500000", "--data-bitrate", "2000000")
    assert loose.returncode == 0, loose.stderr
    assert "warning:" in loose.stderr and "cannot carry the recorded traffic" in loose.stderr
    strict = harness("replay", trace, "--bitrate", "500000", "--strict-timing")
    assert strict.returncode != 0
    assert "cannot carry the recorded traffic" in strict.stderr
    from_trace = harness("replay", trace, "--strict-timing")
    assert from_trace.returncode == 0, from_trace.stderr
    assert "1 Mbit/s, data 4 Mbit/s (from the trace)" in from_trace.stdout


def test_every_output_format_keeps_the_input_time_base(tmp_path: Path) -> None:
    """python-can's ASC writer counts from its first event; the output must still line up
    with the recording, as .log and .blf do. Replaying the output again changes nothing."""
    trace = fast_recording(tmp_path / "fast.asc", frames=20)
    recorded = [r.time_s for r in read_trace(trace)]
    for suffix in (".asc", ".log", ".blf", ".asc.gz"):
        out = tmp_path / f"out{suffix}"
        replay(trace, output=out, tail_ms=0)
        times = [r.time_s for r in read_trace(out)]
        assert len(times) == 20, suffix
        again = tmp_path / f"again{suffix}"
        replay(out, output=again, tail_ms=0, bitrate=1_000_000,
               data_bitrate=4_000_000)  # python-can's writers do not record the rates  # fmt: skip
        assert [r.time_s for r in read_trace(again)] == times, suffix
        # on an idle bus each replayed frame ends at its recorded time
        assert all(abs(t - r) < 1e-6 for t, r in zip(times, recorded, strict=True)), suffix


@pytest.mark.parametrize("suffix", [".csv", ".db"])
def test_outputs_without_fd_flags_say_how_many_frames_lost_them(
    tmp_path: Path, suffix: str
) -> None:
    trace = fast_recording(tmp_path / "fast.asc", frames=20)
    result = replay(trace, output=tmp_path / f"out{suffix}", tail_ms=0)
    assert result.output_warning is not None
    assert "20 CAN FD frames lost their FD, BRS or ESI flag" in result.output_warning
    assert replay(trace, output=tmp_path / "out.blf", tail_ms=0).output_warning is None


@pytest.mark.parametrize(
    ("connection", "rates"),
    [("PCAN-USB FD   Nominal 1 MBit/s, Data 2 Mbit/s", BitRates(1_000_000, 2_000_000)),
     ("PCAN-USB      500 kBit/s", BitRates(500_000)),
     ("N/A           N/A", None)],
)  # fmt: skip
def test_trc_headers_state_both_phases(
    tmp_path: Path, connection: str, rates: BitRates | None
) -> None:
    trc = tmp_path / "peak.trc"
    trc.write_text(f";$FILEVERSION=2.0\n;-------\n;   Connection                 Bit rate\n"
                   f";   {connection}\n;-------\n      1         1.000 DT 0100 Rx 2  01 02\n")
    assert recorded_bitrates(trc) == ({None: rates} if rates else {})


def test_rates_say_where_each_phase_came_from(tmp_path: Path) -> None:
    trc = tmp_path / "peak.trc"
    trc.write_text(";$FILEVERSION=2.0\n;$COLUMNS=N,O,T,I,d,l,D\n;-------\n"
                   ";   Connection                 Bit rate\n;   PCAN-USB   250 kbit/s\n;---\n"
                   "      1         1.000 DT 0100 Rx 2  01 02\n")  # fmt: skip
    result = replay(trc, tail_ms=0)
    assert result.bitrates["can0"] == (BitRates(250_000, 2_000_000),
                                       "nominal from the trace, data default")  # fmt: skip
    given = replay(trc, bitrate=1_000_000, tail_ms=0)
    assert given.bitrates["can0"][1] == "nominal given, data default"
    trc.write_text(trc.read_text().replace("250 kbit/s", "Nominal 500 kbit/s, Data 2 Mbit/s"))
    with pytest.raises(HarnessError, match=r"data bit rate \(2000000 bit/s, from the trace\) is "
                       r"below the nominal one \(5000000 bit/s, given\)"):  # fmt: skip
        replay(trc, bitrate=5_000_000, tail_ms=0)


def test_outputs_that_cannot_be_written_are_refused_before_the_run(tmp_path: Path) -> None:
    trace = fast_recording(tmp_path / "fast.asc", frames=5)
    before = trace.read_bytes()
    for output, reason in [(trace, "is the trace being replayed"),
                           (tmp_path / "nodir" / "out.asc", "does not exist"),
                           (tmp_path / "out.xyz", "cannot write '.xyz'")]:  # fmt: skip
        with pytest.raises(TraceError, match=reason):
            replay(trace, output=output)
    assert trace.read_bytes() == before  # the recording is intact


def test_a_replay_that_fails_leaves_no_half_written_output(tmp_path: Path) -> None:
    trace = fast_recording(tmp_path / "fast.asc", frames=50)
    lines = trace.read_text().splitlines()
    lines[40] = lines[40].replace(" 8  8 ", " 8  9 ")  # a broken record near the end
    trace.write_text("\n".join(lines) + "\n")
    with pytest.raises(TraceError, match="line 41: cannot parse"):
        replay(trace, output=tmp_path / "out.asc")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fast.asc"]


def test_a_replay_that_sends_nothing_says_why(tmp_path: Path) -> None:
    trace = fast_recording(tmp_path / "fast.asc", frames=10)
    nothing = replay(trace, options=ReplayOptions(ids=frozenset({0x600})), tail_ms=0)
    assert nothing.frames_in == 0 and nothing.filter_warning is not None
    assert "nothing was replayed" in nothing.filter_warning
    assert "the trace's channels as python-can numbers them: 0" in nothing.filter_warning
    unmapped = replay(trace, options=ReplayOptions(channels={0: "can0", 1: "can1"}), tail_ms=0)
    assert unmapped.frames_in == 10
    assert unmapped.filter_warning == ("the channel map names channels not seen in the trace "
                                       "(up to the window's end): 1 (its channels: 0)")  # fmt: skip
    assert replay(trace, tail_ms=0).filter_warning is None


def test_a_channel_map_onto_a_bus_without_the_ecu_is_refused(
    tmp_path: Path, firmware: dict[str, Path]
) -> None:
    trace = fast_recording(tmp_path / "fast.asc", frames=10)
    with pytest.raises(HarnessError, match="sends frames to can2, where the ECU is not"):
        replay(trace, firmware=firmware["canecho"], options=ReplayOptions(channels={0: "can2"}))


def test_bus_load_is_given_for_the_replay_and_with_the_tail(tmp_path: Path) -> None:
    result = replay(fast_recording(tmp_path / "fast.asc"), tail_ms=100)
    during, overall = result.replay_load["can0"], result.bus_load["can0"]
    assert 0.6 < during < 0.8 and overall < during / 4  # 16 ms of traffic, 100 ms of tail
    assert f"can0 {during:.1%} while replaying ({overall:.1%} with the tail)" in result.summary()


@pytest.mark.parametrize(
    ("option", "message"),
    [(["--tail-ms", "-50"], "argument --tail-ms: expected a number of 0 or more, not '-50'"),
     (["--bitrate", "0"], "argument --bitrate: expected a whole number above 0, not '0'"),
     (["--timing-tolerance-ms", "inf"], "argument --timing-tolerance-ms: expected a number"),
     (["--time-scale", "nan"], "argument --time-scale: expected a number above 0, not 'nan'")],
)  # fmt: skip
def test_cli_refuses_numbers_that_make_no_sense(
    tmp_path: Path, option: list[str], message: str
) -> None:
    result = harness("replay", str(fast_recording(tmp_path / "fast.asc", frames=2)), *option)
    assert result.returncode == 2 and message in result.stderr, result.stderr


def test_frames_on_two_buses_do_not_hold_each_other_back(tmp_path: Path) -> None:
    """A long FD frame on can1 recorded just after a short one on can0: each bus has its own
    queue, so each ends at its recorded time."""
    trace = tmp_path / "two.log"
    lines = ["(0.900000) can0 100#00"]
    for i in range(5):
        t = 1 + i / 100
        lines.append(f"({t:.6f}) can0 123#{'11' * 8}")
        lines.append(f"({t + 1e-6:.6f}) can1 456##0{'22' * 64}")
    trace.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.log"
    result = replay(trace, output=out, tail_ms=0,
                    options=ReplayOptions(channels={"can0": "can0", "can1": "can1"}))  # fmt: skip
    recorded = [r.time_s for r in read_trace(trace)]
    written = sorted(r.time_s for r in read_trace(out))
    assert max(abs(a - b) for a, b in zip(sorted(recorded), written, strict=True)) < 1e-6
    assert result.lateness.max_ns == 0


def test_a_frame_that_must_queue_behind_the_previous_one_counts_as_late(tmp_path: Path) -> None:
    """Recorded 200 us after an 8-byte frame, a 64-byte FD frame would have had to start
    before that frame: it waits, and the lateness (and strict timing) say so."""
    trace = tmp_path / "one.log"
    trace.write_text(f"(1.000000) can0 123#{'11' * 8}\n(1.000200) can0 456##0{'22' * 64}\n")
    result = replay(trace, tail_ms=0)
    assert result.lateness.max_ns > 500_000
    with pytest.raises(ReplayTimingError, match=r"ID 0x456 recorded at 1\.000200 s started"):
        replay(trace, tail_ms=0, strict_timing=True, timing_tolerance_ms=0.5)


def test_trc_2_1_gives_each_bus_its_rate(tmp_path: Path) -> None:
    trc = tmp_path / "two.trc"
    trc.write_text(";$FILEVERSION=2.1\n;$COLUMNS=N,O,T,B,I,d,R,L,D\n;---------\n"
                   ";   Bus   Name   Connection     Protocol  Bit rate\n"
                   ";   1     A      PCAN-USB FD    CAN       500 kbit/s\n"
                   ";   2     B      PCAN-USB FD    CAN       125 kbit/s\n;---------\n"
                   "      1         1.000 DT 1  0100 Rx -  2    01 02\n"
                   "      2         2.000 DT 2  0200 Rx -  2    01 02\n")  # fmt: skip
    assert recorded_bitrates(trc) == {1: BitRates(500_000), 2: BitRates(125_000)}
    result = replay(trc, options=ReplayOptions(channels={1: "can0", 2: "can1"}), tail_ms=0)
    assert result.bitrates["can1"] == (BitRates(125_000, 2_000_000),
                                       "nominal from the trace, data default")  # fmt: skip


def test_a_window_on_absolute_timestamps_keeps_its_first_frame(tmp_path: Path) -> None:
    """Epoch timestamps: 1700000000.05 - 1700000000.0 is not 0.05 in floats."""
    trace = tmp_path / "epoch.log"
    trace.write_text("".join(f"({1_700_000_000 + i * 0.005:.6f}) can0 {0x100 + i:03X}#00\n"
                             for i in range(40)))  # fmt: skip
    result = replay(trace, options=ReplayOptions(start_s=0.05, stop_s=0.1), tail_ms=0)
    assert result.frames_in == 11  # frames 10..20, both ends included
    ids = sorted(k[1] for k in result.stats)
    assert ids[0] == 0x100 + 10 and ids[-1] == 0x100 + 20


def test_time_order_is_checked_per_bus(tmp_path: Path) -> None:
    """Loggers of several buses may write two buses' frames a little out of order; one bus
    never goes back, and nothing comes before the first frame."""
    jitter = tmp_path / "jitter.log"
    jitter.write_text("(1.000000) can0 100#01\n(1.000010) can1 200#02\n(1.000009) can0 101#03\n")
    both = ReplayOptions(channels={"can0": "can0", "can1": "can1"})
    assert replay(jitter, options=both, tail_ms=0).frames_in == 3
    same_bus = tmp_path / "back.log"
    same_bus.write_text("(1.000000) can0 100#01\n(1.000010) can0 200#02\n(1.000009) can0 101#03\n")
    with pytest.raises(TraceError, match=r"frame 3 at 1\.000009 s goes back in time"):
        replay(same_bus, tail_ms=0)
    before = tmp_path / "before.log"
    before.write_text("(1.000000) can0 100#01\n(0.500000) can0 101#03\n")
    with pytest.raises(TraceError, match=r"frame 2 at 0\.500000 s is before the trace's first"):
        replay(before, tail_ms=0)


def test_replays_that_reach_nothing_or_merge_channels_warn(
    tmp_path: Path, firmware: dict[str, Path]
) -> None:
    empty = tmp_path / "empty.log"
    empty.write_text("")
    assert "has no frames" in (replay(empty, tail_ms=0).filter_warning or "")
    two = tmp_path / "two.log"
    two.write_text("(1.000000) can0 100#01\n(1.001000) can1 200#02\n")
    merged = replay(two, tail_ms=0)
    assert merged.frames_in == 2
    assert "several channels ('can0', 'can1'), all replayed onto can0" in (
        merged.filter_warning or "")  # fmt: skip
    # the light controller uses MCAN0 only: stimulus on can1 reaches no ECU
    unheard = replay(two, firmware=firmware["elc"], tail_ms=10,
                     options=ReplayOptions(channels={"can0": "can1", "can1": "can1"}))  # fmt: skip
    assert unheard.ecu_warning == ("2 frames were replayed on can1, where the ECU's MCAN1 never "
                                   "went on the bus: no ECU heard them")  # fmt: skip


def test_cli_refuses_a_report_it_could_not_write_before_the_replay(tmp_path: Path) -> None:
    trace = str(fast_recording(tmp_path / "fast.asc", frames=2))
    base = ["replay", trace, "--dbc", str(Dbc.load().source), "-o", str(tmp_path / "out.asc")]
    for extra, message in [(["--plot", "Nope.*", "--report", str(tmp_path / "r.html")],
                            "--plot 'Nope.*' matches no signal"),
                           (["--plot", "LightStatus.*", "--report", str(tmp_path / "r.pdf")],
                            "a report is .png or .html")]:  # fmt: skip
        result = harness(*base, *extra)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert not (tmp_path / "out.asc").exists()  # refused before the replay ran


def test_a_firmware_that_never_goes_on_the_bus_is_named(
    tmp_path: Path, firmware: dict[str, Path]
) -> None:
    with pytest.raises(HarnessError, match=r"MCAN0 did not leave INIT within 100 ms of boot"):
        replay(fast_recording(tmp_path / "fast.asc", frames=2), firmware=firmware["app"])
