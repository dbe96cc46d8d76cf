"""Trace replay: reading every python-can format, injecting at recorded times, recording the
bus, comparing traces by DBC signals; errors for bad traces."""

from __future__ import annotations

import gzip
import itertools
import tracemalloc
from pathlib import Path

import can
import pytest
from test_cli import harness

from harness import Machine
from harness.dbc import Dbc
from harness.network import CanFrame, Network, PythonNode
from harness.replay import ReplayOptions, TraceError, TraceRecorder, read_trace, replay
from harness.replay.compare import compare_traces
from harness.replay.player import TracePlayer
from harness.testing import CanTester

DBC = Dbc.load()
ELC_IDS = DBC.sent_by("ELC")


def record_drive(elc: Path, path: Path, frames: int = 60) -> None:
    """A reference recording: VehicleState every 10 ms (brake pressed in the middle, a turn
    request) into the real ELC firmware, and everything it answers."""
    net = Network()
    net.can_bus("can0", 500_000, 2_000_000)
    net.add_ecu("ELC", Machine(elc))
    net.run_for(ms=1)
    recorder = TraceRecorder(net, path, time_offset_s=100.0)
    body = CanTester(net, DBC)  # E2E-protects VehicleState, as the real VCU does
    body.node.sent_listeners.append(recorder.mark_stimulus)
    for i in range(frames):
        brake = "Pressed" if frames // 3 <= i < 2 * frames // 3 else "Released"
        body.send("VehicleState", Speed=i, BrakePedal=brake,
                  TurnRequest="Left" if i > frames // 2 else "Off")  # fmt: skip
        net.run_for(ms=10)
    recorder.close()


@pytest.fixture(scope="module")
def drive(firmware: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("traces") / "drive.asc"
    record_drive(firmware["elc"], path)
    return path


def stimulus_messages(n: int = 50, fd: bool = True) -> list[can.Message]:
    msgs = [can.Message(timestamp=50.0 + i * 0.005, arbitration_id=0x100 + i % 4,
                        data=bytes([i % 256] * 8), is_extended_id=False, channel=0)
            for i in range(n)]  # fmt: skip
    msgs.append(can.Message(timestamp=50.0 + n * 0.005, arbitration_id=0x18FF0042,
                            data=b"\x01\x02", is_extended_id=True, channel=0))  # fmt: skip
    if fd:
        msgs.append(can.Message(timestamp=50.0 + (n + 1) * 0.005, arbitration_id=0x321,
                                data=bytes(range(64)), is_fd=True, bitrate_switch=True,
                                channel=0))  # fmt: skip
    return msgs


def write_trace(path: Path, msgs: list[can.Message]) -> Path:
    with can.Logger(str(path)) as writer:
        if isinstance(writer, can.ASCWriter):  # keep the times as given (python-can's ASC
            writer.log_event("Start", timestamp=0.0)  # writer counts from its first event)
        for m in msgs:
            writer.on_message_received(m)
    return path


# ---- reading ----


@pytest.mark.parametrize("suffix", [".asc", ".blf", ".csv", ".trc", ".log", ".db", ".asc.gz"])
def test_every_python_can_format_reads_the_same_frames(tmp_path: Path, suffix: str) -> None:
    fd = suffix != ".trc"  # python-can's TRC writer has no CAN FD
    msgs = stimulus_messages(fd=fd)
    path = write_trace(tmp_path / f"t{suffix}", msgs)
    got = list(read_trace(path))
    assert [(r.frame.arbitration_id, r.frame.data, r.frame.is_extended, r.frame.is_fd)
            for r in got] == [(m.arbitration_id, bytes(m.data), m.is_extended_id, m.is_fd)
                              for m in msgs]  # fmt: skip
    gaps = [round(b.time_s - a.time_s, 6) for a, b in itertools.pairwise(got)]
    assert set(gaps) == {0.005}


def test_bad_traces_name_the_file_the_place_and_the_reason(tmp_path: Path) -> None:
    good = write_trace(tmp_path / "good.asc", stimulus_messages())
    text = good.read_text()
    cut = tmp_path / "cut.asc"
    cut.write_text(text[: len(text) * 2 // 3])
    with pytest.raises(
        TraceError, match=r"cut\.asc: line \d+: truncated \(the file ends mid-line\)"
    ):
        list(read_trace(cut))
    unended = tmp_path / "unended.asc"
    unended.write_text(text.replace("End TriggerBlock", ""))
    with pytest.raises(TraceError, match="no 'End TriggerBlock'"):
        list(read_trace(unended))
    lines = text.splitlines(keepends=True)
    bad = tmp_path / "bad.asc"
    bad.write_text("".join([*lines[:10], "   50.1 1  zz9  Rx   d 8 GG 00 00\n", *lines[10:]]))
    with pytest.raises(TraceError, match=r"bad\.asc: line 11: cannot parse .*zz9"):
        list(read_trace(bad))
    blf = write_trace(tmp_path / "t.blf", stimulus_messages())
    short = tmp_path / "short.blf"
    short.write_bytes(blf.read_bytes()[:-100])
    with pytest.raises(TraceError, match=r"short\.blf: truncated: the header says \d+ bytes"):
        list(read_trace(short))
    junk = tmp_path / "junk.blf"
    junk.write_bytes(b"not a BLF file at all" * 10)
    with pytest.raises(TraceError, match=r"junk\.blf: the file header: not a valid \.blf trace"):
        list(read_trace(junk))
    pcap = tmp_path / "x.pcap"
    pcap.write_bytes(b"\0")
    with pytest.raises(TraceError, match=r"unknown trace format '\.pcap'; python-can reads \.asc"):
        list(read_trace(pcap))
    with pytest.raises(TraceError, match="no such trace file"):
        list(read_trace(tmp_path / "missing.asc"))
    log = tmp_path / "bad.log"
    log.write_text("(1.000000) can0 123#0102\n(1.001000) can0 12G#00\n")
    with pytest.raises(TraceError, match=r"bad\.log: line 2: cannot parse \(ValueError"):
        list(read_trace(log))


def test_a_long_trace_streams_in_flat_memory(tmp_path: Path) -> None:
    def peak(frames: int) -> int:
        path = tmp_path / f"long{frames}.log"
        with path.open("w") as f:  # candump format, written directly: fast to make
            for i in range(frames):
                f.write(
                    f"({i * 0.0002:.6f}) can0 {0x100 + i % 16:03X}#{i % 256:02X}00000000000000\n"
                )
        net = Network()
        net.can_bus("can0", 1_000_000)
        tracemalloc.start()
        result = replay_network(net, path)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert result == frames
        return top

    small, large = peak(1_000), peak(12_000)
    assert large < 1.5 * small + 100_000  # 12x the frames, not 12x the memory


def replay_network(net: Network, path: Path) -> int:
    from harness.replay import TracePlayer

    player = TracePlayer(net, path, ReplayOptions())
    while not player.done:
        net.run_for(ms=100)
    return player.counts.injected


# ---- replaying ----


def test_replaying_a_recording_into_the_same_firmware_reproduces_it(
    drive: Path, firmware: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out.blf"
    result = replay(drive, firmware=firmware["elc"], output=out, dbc=DBC,
                    options=ReplayOptions(exclude_ids=ELC_IDS))  # fmt: skip
    assert result.frames_in == 60  # the VehicleState frames; the ECU's own were left out
    assert result.frames_out > 60  # LightStatus every 10 ms and on change, LightDiag, NM
    assert "VehicleState" in result.summary() and "LightStatus" in result.summary()
    comparison = compare_traces(drive, out, dbc=DBC)
    assert comparison.equal, comparison.report()
    assert comparison.compared == sum(1 for _ in read_trace(drive))
    written = list(read_trace(out))
    assert [r.is_rx for r in written if r.frame.arbitration_id == 0x100] == [True] * 60
    # frames end at their recorded times unless an ECU frame holds the bus (the ECU's tick
    # is not in the same phase as when the drive was recorded): then by less than one frame
    recorded = [r.time_s for r in read_trace(drive) if r.frame.arbitration_id == 0x100]
    replayed = [r.time_s for r in written if r.frame.arbitration_id == 0x100]
    offsets = sorted(b - a for a, b in zip(recorded, replayed, strict=True))
    assert abs(offsets[0]) < 1e-6 and 0 <= offsets[-1] < 0.25e-3
    assert all(not r.is_rx for r in written if r.frame.arbitration_id in ELC_IDS)


def test_window_filters_time_scale_and_loops(tmp_path: Path) -> None:
    path = write_trace(tmp_path / "t.asc", stimulus_messages(n=40, fd=False))

    def run(**options: object) -> list[CanFrame]:
        net = Network()
        net.can_bus("can0", 1_000_000)
        spy = PythonNode("spy", net.bus("can0"))
        from harness.replay import TracePlayer

        player = TracePlayer(net, path, ReplayOptions(**options))  # type: ignore[arg-type]
        while not player.done:
            net.run_for(ms=10)
        net.run_for(ms=1)
        return spy.received

    everything = run()
    assert len(everything) == 41
    window = run(start_s=0.05, stop_s=0.1)  # 10 ms .. 20 ms of trace time: frames 10..20
    assert [f.data[0] for f in window] == list(range(10, 21))
    assert window[0].timestamp_ns < everything[10].timestamp_ns  # the window starts at once
    only = run(ids=frozenset({0x101}))
    assert {f.arbitration_id for f in only} == {0x101} and len(only) == 10
    without = run(exclude_ids=frozenset({0x101, 0x18FF0042}))
    assert len(without) == 30
    dense = run(time_scale=0.5)  # 5 ms recorded -> 2.5 ms (frame lengths differ by stuff bits)
    span = dense[-1].timestamp_ns - dense[0].timestamp_ns
    assert abs(span - (everything[-1].timestamp_ns - everything[0].timestamp_ns) / 2) < 20_000
    looped = run(loops=3)
    assert len(looped) == 3 * 41 and looped[41].data == looped[0].data


def test_channels_map_onto_two_buses(tmp_path: Path) -> None:
    msgs = [can.Message(timestamp=i * 0.001, arbitration_id=0x200 + i, data=b"\x00",
                        is_extended_id=False, channel=i % 2) for i in range(10)]  # fmt: skip
    path = write_trace(tmp_path / "two.asc", msgs)
    result = replay(path, output=tmp_path / "out.asc",
                    options=ReplayOptions(channels={0: "can0", 1: "can1"}))  # fmt: skip
    assert result.frames_in == 10
    written = list(read_trace(tmp_path / "out.asc"))
    assert {(r.frame.arbitration_id - 0x200) % 2 for r in written if r.channel == 0} == {0}
    assert {(r.frame.arbitration_id - 0x200) % 2 for r in written if r.channel == 1} == {1}
    only_one = replay(path, options=ReplayOptions(channels={1: "can0"}))
    assert only_one.frames_in == 5 and only_one.filtered == 5
    from harness.replay import TracePlayer

    net = Network()
    net.can_bus("can0")
    with pytest.raises(ValueError, match="buses the network does not have: can7"):
        TracePlayer(net, path, ReplayOptions(channels={0: "can0", 1: "can7"}))


def test_ids_unknown_to_the_dbc_replay_raw_and_compare_by_bytes(
    firmware: dict[str, Path], tmp_path: Path
) -> None:
    msgs = stimulus_messages(n=8, fd=False)  # 0x100..0x103: 0x100 is VehicleState, rest unknown
    path = write_trace(tmp_path / "raw.asc", msgs)
    out = tmp_path / "out.asc"
    result = replay(path, firmware=firmware["elc"], output=out, dbc=DBC)
    assert result.frames_in == 9
    replayed = [r for r in read_trace(out) if r.is_rx]
    assert [(r.frame.arbitration_id, r.frame.data) for r in replayed] == [
        (m.arbitration_id, bytes(m.data)) for m in msgs]  # fmt: skip
    changed = list(msgs)
    changed[1] = can.Message(timestamp=msgs[1].timestamp, arbitration_id=0x101, data=b"\xff" * 8,
                             is_extended_id=False, channel=0)  # fmt: skip
    other = write_trace(tmp_path / "changed.asc", changed)
    diff = compare_traces(path, other, dbc=DBC)
    assert diff.total_differences == 1 and "101" in diff.report() and "ffffffff" in diff.report()


# ---- comparing ----


def edited(drive: Path, tmp_path: Path, edit: object) -> Path:
    """A copy of the drive with `edit(index, message) -> message | None` applied."""
    out = []
    for i, record in enumerate(read_trace(drive)):
        msg = record.frame.to_message()
        msg.timestamp, msg.channel = record.time_s, 0
        new = edit(i, msg)  # type: ignore[operator]
        if new is not None:
            out.append(new)
    out.sort(key=lambda m: m.timestamp)  # loggers write in time order
    return write_trace(tmp_path / "edited.asc", out)


def test_compare_finds_value_timing_missing_and_extra_differences(
    drive: Path, tmp_path: Path
) -> None:
    status = [i for i, r in enumerate(read_trace(drive)) if r.frame.arbitration_id == 0x300]
    target, dropped, late = status[5], status[10], status[20]

    def edit(i: int, msg: can.Message) -> can.Message | None:
        if i == target:  # BrakeLamp is bit 0 of LightStatus byte 0 (per the DBC)
            values = DBC.decode(CanFrame.from_message(msg)).signals  # type: ignore[union-attr]
            values = {**values, "BrakeLamp": 1 - values["BrakeLamp"]}
            frame = DBC.encode("LightStatus", **values)
            msg = can.Message(timestamp=msg.timestamp, arbitration_id=0x300, data=frame.data,
                              is_extended_id=False, is_fd=True, bitrate_switch=frame.brs,
                              channel=0)  # fmt: skip
        if i == dropped:
            return None
        if i == late:
            msg.timestamp += 0.005  # out of its 2 ms window, between two others
        return msg

    other = edited(drive, tmp_path, edit)
    diff = compare_traces(drive, other, dbc=DBC, window_ms=2)
    kinds = sorted(d.kind for d in diff.differences)
    assert kinds == ["extra", "missing", "missing", "value"], diff.report()
    assert "BrakeLamp" in diff.report() and "LightStatus" in diff.report()
    masked = compare_traces(drive, other, dbc=DBC, window_ms=2, mask=["LightStatus.BrakeLamp"])
    assert sorted(d.kind for d in masked.differences) == ["extra", "missing", "missing"]
    assert compare_traces(drive, other, dbc=DBC, mask=["LightStatus"]).equal


def test_tolerances_apply_per_signal(drive: Path, tmp_path: Path) -> None:
    def faster(_i: int, msg: can.Message) -> can.Message:
        if msg.arbitration_id == 0x100:
            values = DBC.decode(CanFrame.from_message(msg)).signals  # type: ignore[union-attr]
            frame = DBC.encode("VehicleState", **{**values, "Speed": values["Speed"] + 0.5})
            msg = can.Message(timestamp=msg.timestamp, arbitration_id=0x100, data=frame.data,
                              is_extended_id=False, channel=0)  # fmt: skip
        return msg

    other = edited(drive, tmp_path, faster)
    assert compare_traces(drive, other, dbc=DBC).total_differences == 60
    assert compare_traces(drive, other, dbc=DBC, tolerances={"VehicleState.Speed": 0.6}).equal
    assert compare_traces(drive, other, dbc=DBC, tolerances={"*.Spe*": 0.6}).equal


# ---- command line ----


def test_cli_replay_and_compare(drive: Path, firmware: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.asc"
    result = harness("replay", str(drive), "--firmware", str(firmware["elc"]), "--dbc",
                     str(DBC.source), "--ecu-node", "ELC", "-o", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "60 in (replayed)" in result.stdout and "LightStatus" in result.stdout
    same = harness("compare", str(drive), str(out), "--dbc", str(DBC.source))
    assert same.returncode == 0 and "- equal" in same.stdout
    other = edited(drive, tmp_path, lambda i, m: None if i == 3 else m)
    differ = harness("compare", str(drive), str(other), "--dbc", str(DBC.source))
    assert differ.returncode == 1 and "missing" in differ.stdout
    bad = harness("replay", str(tmp_path / "nope.asc"))
    assert bad.returncode == 2 and "no such trace file" in bad.stderr
    needs_dbc = harness("replay", str(drive), "--ecu-node", "ELC")
    assert needs_dbc.returncode == 2 and "--ecu-node needs --dbc" in needs_dbc.stderr


def test_gzip_output_and_input(tmp_path: Path) -> None:
    path = write_trace(tmp_path / "in.asc.gz", stimulus_messages(n=5, fd=False))
    with gzip.open(path) as raw:
        assert raw.read().startswith(b"date")
    result = replay(path, output=tmp_path / "out.asc.gz")
    assert result.frames_in == 6 and len(list(read_trace(tmp_path / "out.asc.gz"))) == 6


# ---- reports ----


def test_reports_plot_chosen_signals(drive: Path, tmp_path: Path) -> None:
    from harness.errors import HarnessError
    from harness.replay.report import collect, write_report

    series = collect(drive, DBC, ["LightStatus.BrakeLamp", "VehicleState.Brake*"])
    assert sorted(series) == ["LightStatus.BrakeLamp", "VehicleState.BrakePedal"]
    times, values = series["VehicleState.BrakePedal"]
    assert len(times) == 60 and values[0] == 0 and max(values) == 1  # pressed in the middle
    png = write_report(tmp_path / "r.png", drive, DBC, ["LightStatus.BrakeLamp"])
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and png.stat().st_size > 5_000
    page = write_report(tmp_path / "r.html", drive, DBC, ["LightStatus.*"], summary="60 in")
    text = page.read_text()
    assert "<pre>60 in</pre>" in text and "data:image/png;base64," in text
    with pytest.raises(HarnessError, match=r"'Light\.Nope' matches no signal"):
        collect(drive, DBC, ["Light.Nope"])
    with pytest.raises(HarnessError, match=r"a report is \.png or \.html"):
        write_report(tmp_path / "r.pdf", drive, DBC, ["LightStatus.BrakeLamp"])


def test_cli_replay_writes_a_report(drive: Path, firmware: dict[str, Path], tmp_path: Path) -> None:
    out, report = tmp_path / "out.asc", tmp_path / "report.html"
    result = harness("replay", str(drive), "--firmware", str(firmware["elc"]), "--dbc",
                     str(DBC.source), "-o", str(out), "--plot", "LightStatus.BrakeLamp",
                     "--report", str(report))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"report     {report}" in result.stdout and "LightStatus" in report.read_text()
    missing = harness("replay", str(drive), "--plot", "LightStatus.BrakeLamp")
    assert missing.returncode == 2 and "--plot needs --dbc, --report and --output" in missing.stderr


# ---- vendor files python-can reads, as vendors write them ----

CANALYZER_EXPORT = """date Mon Dec 1 10:00:00.000 am 2026
base hex  timestamps absolute
   0.010000 1  123             Rx   d 2 01 02
   0.020000 1  124             Rx   d 1 03
   0.030000 CANFD   1 Rx        125                                   1 0 8  8 01 02 03 04 05 06 07 08   0    0     3000        0 0 0 0 0
   0.040000 CANFD   1 Rx        126                                   0 0 3  0    0    0        0        0 0 0 0 0
   0.050000 CANFD   1 Rx        127                                   0 0 2  2 0A 0B    0    0        0        0 0 0 0 0
"""  # noqa: E501


def test_asc_export_without_triggerblock_and_classic_frames_on_an_fd_channel(
    tmp_path: Path,
) -> None:
    # No 'Begin Triggerblock' (python-can's header parser then swallows the first frame, 0x123),
    # and CANFD lines whose flags have no EDL bit: classic frames, one of them remote.
    path = tmp_path / "export.asc"
    path.write_text(CANALYZER_EXPORT)
    got = [(f.frame.arbitration_id, f.frame.is_fd, f.frame.brs, f.frame.is_remote, f.frame.data)
           for f in read_trace(path)]  # fmt: skip
    assert got == [
        (0x123, False, False, False, b"\x01\x02"),
        (0x124, False, False, False, b"\x03"),
        (0x125, True, True, False, bytes(range(1, 9))),  # EDL | BRS
        (0x126, False, False, True, b""),  # a classic remote frame, DLC 3
        (0x127, False, False, False, b"\x0a\x0b"),
    ]


def test_trc_whose_last_line_has_no_newline_is_whole(tmp_path: Path) -> None:
    msgs = stimulus_messages(fd=False)
    trc = write_trace(tmp_path / "peak.trc", msgs)
    trc.write_text(trc.read_text().rstrip("\n"))
    assert len(list(read_trace(trc))) == len(msgs)
    log = write_trace(tmp_path / "cut.log", msgs)  # candump: a cut line still parses
    log.write_text(log.read_text().rstrip("\n")[:-2])
    with pytest.raises(TraceError, match=r"cut\.log: line \d+: truncated"):
        list(read_trace(log))


def test_an_output_format_without_can_fd_is_refused_before_the_run(
    drive: Path, firmware: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(TraceError, match=r"out\.trc: \.trc output cannot hold CAN FD frames"):
        replay(drive, firmware=firmware["elc"], output=tmp_path / "out.trc")
    assert not (tmp_path / "out.trc").exists()


def test_odd_candump_data_and_a_directory_are_named(tmp_path: Path) -> None:
    log = tmp_path / "odd.log"
    log.write_text("(1.000000) can0 123#0102\n(1.001000) can0 124#ABC\n")
    with pytest.raises(TraceError, match=r"odd\.log: line 2: odd number of hex digits"):
        list(read_trace(log))
    log.write_text("(1.000000) can0 123#0102\n(1.001000) can0 124##1AABB\n(1.002000) can0 125#R\n")
    assert [f.frame.data for f in read_trace(log)] == [b"\x01\x02", b"\xaa\xbb", b""]
    with pytest.raises(TraceError, match="is a directory, not a trace file"):
        list(read_trace(tmp_path))


# ---- found by python-can's own sample files (tests/test_corpora.py) ----

# From python-can's logfile.asc / test_CanFdMessage64.asc / test_CanFdRemoteMessage.asc: a
# 64-byte frame whose flags column (one field short) has no EDL bit, an 8-byte one with the
# BRS column set and flags 0, and a classic remote frame on a CAN FD channel with ESI set.
FD_FLAGS_ASC = """date Sam Sep 30 15:06:13.191 2017
base hex  timestamps absolute
internal events logged
// version 9.0.0
Begin Triggerblock Sam Sep 30 15:06:13.191 2017
   0.000000 Start of measurement
  30.300981 CANFD   3 Tx     50005x                                0 1 5 0 140000 73 200050 7a60 46500250 460a0250 20011736 20010205
  30.506898 CANFD   4 Rx        4EE                                   0 1 f 64 A1 02 03 04 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 64 1331984 11 0 46500250 460a0250 20011736 20010205
  30.606898 CANFD   4 Rx        4EF                                   1 0 8  8 01 02 03 04 05 06 07 08   102203  133   0 e0006659 46500250 4b140250 20011736 2001040d
End TriggerBlock
"""  # noqa: E501


def test_asc_fd_lines_that_cannot_be_classic_stay_fd_and_classic_frames_lose_esi(
    tmp_path: Path,
) -> None:
    path = tmp_path / "fd.asc"
    path.write_text(FD_FLAGS_ASC)
    got = [(f.frame.arbitration_id, f.frame.is_fd, f.frame.brs, f.frame.esi, f.frame.is_remote,
            f.frame.dlc, len(f.frame.data)) for f in read_trace(path)]  # fmt: skip
    assert got == [
        (0x50005, False, False, False, True, 5, 0),  # ESI column 1: not part of a classic frame
        (0x4EE, True, False, True, False, 15, 64),  # 64 bytes: FD, whatever the flags say
        (0x4EF, True, True, False, False, 8, 8),  # BRS exists only in FD frames
    ]


def test_asc_with_relative_timestamps_counts_from_the_previous_event(tmp_path: Path) -> None:
    """`timestamps relative`: each line's time counts from the previous event's, non-frame
    events included (python-can reads them as absolute times)."""
    path = tmp_path / "relative.asc"
    path.write_text("date Tue Dec 1 10:00:00.000 2026\nbase hex  timestamps relative\n"
                    "internal events logged\nBegin Triggerblock Tue Dec 1 10:00:00.000 2026\n"
                    "   0.000000 Start of measurement\n"
                    "   0.010000 1  100             Rx   d 1 01\n"
                    "   0.010000 1  100             Rx   d 1 02\n"
                    "   0.005000 1  Statistic: D 0 R 0 XD 0 XR 0 E 0 O 0 B 0.00%\n"
                    "   0.020000 1  100             Rx   d 1 03\n"
                    "End TriggerBlock\n")  # fmt: skip
    assert [round(r.time_s, 6) for r in read_trace(path)] == [0.01, 0.02, 0.045]


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [("short.asc", "date Tue Dec 1 10:00:00.000 2026\nbase hex  timestamps absolute\n"
      "internal events logged\nBegin Triggerblock\n   0.001000 1  100  Rx   d 8 01 02\n"
      "End TriggerBlock\n", "line 5"),
     ("short.csv", "timestamp,arbitration_id,extended,remote,error,dlc,data\n"
      "1.0,0x100,0,0,0,3,AQI=\n", "line 2")],
)  # fmt: skip
def test_a_record_with_fewer_bytes_than_its_dlc_is_refused(
    tmp_path: Path, name: str, text: str, where: str
) -> None:
    """python-can passes on the bytes it finds: a frame that never existed on the bus."""
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(TraceError, match=rf"{name}: {where}: the DLC says \d data bytes, the "
                       r"record has \d"):  # fmt: skip
        list(read_trace(path))


def test_trc_fd_frames_longer_than_8_bytes_are_read(tmp_path: Path) -> None:
    """python-can's TRC 2.x reader gives an FD frame's DLC as the code (9 = 12 bytes)."""
    path = tmp_path / "fd.trc"
    path.write_text(";$FILEVERSION=2.1\n;$STARTTIME=44548.6\n;$COLUMNS=N,O,T,B,I,d,R,L,D\n"
                    "      1         1.000 FD 1  0100 Rx -  9    "
                    + " ".join(["AA"] * 12) + "\n"
                    "      2         2.000 FB 1  0101 Rx -  15   "
                    + " ".join(["BB"] * 64) + "\n")  # fmt: skip
    frames = [r.frame for r in read_trace(path)]
    assert [(len(f.data), f.is_fd, f.brs) for f in frames] == [(12, True, False), (64, True, True)]


ASC_HEAD = ("date Tue Dec 1 10:00:00.000 2026\nbase hex  timestamps absolute\n"
            "internal events logged\nBegin Triggerblock\n")  # fmt: skip


@pytest.mark.parametrize(
    ("line", "reason"),
    [("   0.001000 CANFD   1 Rx        100                                   1 0 9 12 "
      "01 02 03 04 05 06 07 08 09 0A        0    0     3000        0        0        0"
      "        0        0", r"a CANFD line whose data does not match its length \(12 bytes\): "
      r"6 fields"),
     ("   0.001000 CANFD   1 Rx        100                                   0 0 8  8 "
      "01 02 03 04 05 06 07 08 09 0 0 3000 0 0 0 0 0", r"a CANFD line .*: 9 fields after the data"),
     ("   0.001000 1  100             Rx   d 2 01 02 03", r"3 data bytes on a classic CAN line "
      r"with DLC 2: python-can would read 2")],
)  # fmt: skip
def test_asc_lines_whose_data_does_not_match_their_length_are_refused(
    tmp_path: Path, line: str, reason: str
) -> None:
    """python-can reads as many bytes as the length says: fewer listed and the trailing
    fields become data; more and they are dropped. Either way not the recorded frame."""
    path = tmp_path / "bad.asc"
    path.write_text(ASC_HEAD + line + "\nEnd TriggerBlock\n")
    with pytest.raises(TraceError, match=r"bad\.asc: line 5: " + reason):
        list(read_trace(path))


def test_a_player_driven_by_hand_leaves_the_run_its_length(tmp_path: Path) -> None:
    """The player ends a replay's run at its last frame only when asked to (`on_done`):
    a test that runs a network with a player on it for 200 ms gets 200 ms."""
    trace = tmp_path / "five.log"
    trace.write_text("".join(f"({1.0 + i * 0.01:.6f}) can0 300#0011\n" for i in range(5)))
    net = Network()
    net.can_bus("can0")
    spy = PythonNode("spy", net.bus("can0"))
    player = TracePlayer(net, trace, ReplayOptions())
    net.run_for(ms=200)
    assert net.now_ns == 200_000_000 and len(spy.received) == 5 and player.done
    stopped = Network()
    stopped.can_bus("can0")
    TracePlayer(stopped, trace, ReplayOptions(), on_done=stopped.stop)
    stopped.run_for(ms=200)
    assert stopped.now_ns < 50_000_000  # at the fifth frame's end, ~40 ms in
