"""`harness compare` / `compare_traces` on small synthetic traces: message selection (names,
IDs, did-you-mean), nothing compared is not equal, frame formats, channels, bad options."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import can
import pytest

from harness.cli import main as cli
from harness.dbc import Dbc
from harness.network import CanFrame
from harness.replay.compare import CompareError, compare_traces

DBC = Dbc.load()
COUNTER = "*.LightStatus_Counter"  # the README's recommended mask


def frames(n: int = 10) -> list[tuple[float, CanFrame]]:
    """VehicleState (classic) and LightStatus (CAN FD, 16 bytes, BRS) every 10 ms."""
    out = []
    for i in range(n):
        out.append((i * 0.010, DBC.encode("VehicleState", Speed=i)))
        out.append((i * 0.010 + 0.002, DBC.encode("LightStatus", BrakeLamp=i % 2)))
    return out


def write(path: Path, items: list[tuple[float, CanFrame]],
          channel: Callable[[CanFrame], int] = lambda f: 0) -> Path:  # fmt: skip
    with can.Logger(str(path)) as log:
        if isinstance(log, can.ASCWriter):  # keep the times as given (python-can's ASC
            log.log_event("Start", timestamp=0.0)  # writer counts from its first event)
        for time_s, frame in items:
            msg = frame.to_message()
            msg.timestamp, msg.channel = 100.0 + time_s, channel(frame)
            log.on_message_received(msg)
    return path


def changed(items: list[tuple[float, CanFrame]], name: str,
            edit: Callable[[CanFrame], CanFrame]) -> list[tuple[float, CanFrame]]:  # fmt: skip
    key = DBC.message(name).frame_id
    return [(t, edit(f) if f.arbitration_id == key else f) for t, f in items]


@pytest.fixture
def reference(tmp_path: Path) -> Path:
    return write(tmp_path / "reference.asc", frames())


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        status = cli.main(["compare", *args])
    except SystemExit as exit_:  # argparse errors
        status = int(exit_.code or 0)
    out = capsys.readouterr()
    return status, out.out, out.err


# ---- which messages ----


def test_an_unknown_message_name_is_an_error_with_a_suggestion(
    reference: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(CompareError, match=r"'LightStatuss'.*did you mean LightStatus\?"):
        compare_traces(reference, reference, dbc=DBC, messages=["LightStatuss"])
    status, out, err = run_cli(capsys, str(reference), str(reference), "--dbc", str(DBC.source),
                               "--message", "LightStatuss")  # fmt: skip
    assert status == 2 and "equal" not in out
    assert "unknown message 'LightStatuss'" in err and "did you mean LightStatus?" in err
    only = compare_traces(reference, reference, dbc=DBC, messages=["LightStatus"])
    assert only.equal and only.compared == 10


def test_message_names_need_a_dbc_and_ids_select_with_or_without_one(
    reference: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(CompareError, match=r"'LightStatus': message names need a DBC"):
        compare_traces(reference, reference, messages=["LightStatus"])
    status, _, err = run_cli(capsys, str(reference), str(reference), "--message", "LightStatus")
    assert status == 2 and "--dbc" in err and "0x300x" in err
    raw = compare_traces(reference, reference, messages=["0x300"])  # replay's ID syntax
    assert raw.equal and raw.compared == 10
    named = compare_traces(reference, reference, dbc=DBC, messages=["0x300"])  # = LightStatus
    assert named.equal and named.compared == 10
    extended = compare_traces(reference, reference, messages=["0x300x"])  # another ID
    assert not extended.equal and extended.compared == 0


# ---- nothing compared ----


def test_nothing_compared_is_not_equal_and_exits_2(
    reference: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = write(tmp_path / "empty.asc", [])
    not_carried = compare_traces(reference, reference, dbc=DBC, messages=["LightCommand"])
    everything_masked = compare_traces(reference, reference, dbc=DBC, mask=["*"])
    for diff in (compare_traces(empty, empty, dbc=DBC), everything_masked, not_carried):
        assert diff.compared == 0 and diff.reference_frames == 0 and diff.empty
        assert not diff.equal and "NOT equal: nothing compared" in diff.report(), diff.report()
    assert "the reference has no frames" in compare_traces(empty, empty).report()
    assert "none of the reference's 20 frames is in scope (messages LightCommand)" in (
        not_carried.report())  # fmt: skip
    status, out, err = run_cli(capsys, str(reference), str(reference), "--dbc", str(DBC.source),
                               "--message", "LightCommand")  # fmt: skip
    assert status == 2 and "nothing compared" in out and "error: nothing compared" in err
    status, out, _ = run_cli(capsys, str(reference), str(reference), "--dbc", str(DBC.source))
    assert status == 0 and "20 frames paired, 0 differences - equal" in out


# ---- frame format ----


def test_a_frame_sent_in_another_format_is_a_format_difference(
    reference: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def classic(f: CanFrame) -> CanFrame:
        return CanFrame(f.arbitration_id, f.data[:8])  # decodes: the counter is cut off

    def no_brs(f: CanFrame) -> CanFrame:
        return CanFrame(f.arbitration_id, f.data, is_fd=True)

    def padded(f: CanFrame) -> CanFrame:
        return CanFrame(f.arbitration_id, f.data + bytes(4), is_fd=True, brs=True)

    expected = {
        classic: "classic CAN, 8 bytes in the candidate; CAN FD with BRS, 16 bytes in the ref",
        no_brs: "CAN FD without BRS, 16 bytes in the candidate; CAN FD with BRS, 16 bytes",
        padded: "CAN FD with BRS, 20 bytes in the candidate; CAN FD with BRS, 16 bytes",
    }
    for edit, detail in expected.items():
        candidate = write(tmp_path / "candidate.asc", changed(frames(), "LightStatus", edit))
        diff = compare_traces(reference, candidate, dbc=DBC, mask=[COUNTER])
        assert diff.compared == 20 and diff.total_differences == 10, diff.report()
        assert {d.kind for d in diff.differences} == {"format"}
        assert detail in str(diff.differences[0]) and "LightStatus" in str(diff.differences[0])
        raw = compare_traces(reference, candidate)  # without a DBC: raw bytes and format
        assert "format" in {d.kind for d in raw.differences}
    status, out, _ = run_cli(capsys, str(reference), str(candidate), "--dbc", str(DBC.source),
                             "--mask", COUNTER)  # fmt: skip
    assert status == 1 and "format  LightStatus: CAN FD with BRS, 20 bytes" in out
    # A standard and an extended ID are different messages: missing and extra, by ID syntax.
    extended = write(tmp_path / "extended.asc", changed(frames(), "LightStatus", lambda f: CanFrame(
        f.arbitration_id, f.data, is_extended=True, is_fd=True, brs=True)))  # fmt: skip
    diff = compare_traces(reference, extended, dbc=DBC)
    assert {(d.kind, d.key) for d in diff.differences} == {
        ("missing", "LightStatus"), ("extra", "0x300x")}  # fmt: skip


# ---- channels ----


def test_frames_pair_only_within_their_channel_unless_told_otherwise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def split(f: CanFrame) -> int:  # VehicleState on channel 0, LightStatus on 1
        return 1 if f.arbitration_id == 0x300 else 0

    reference = write(tmp_path / "reference.asc", frames(), split)
    moved = write(tmp_path / "moved.asc", frames())  # LightStatus on channel 0 too
    diff = compare_traces(reference, moved, dbc=DBC)
    assert sorted({(d.kind, d.key, d.channel) for d in diff.differences}) == [
        ("extra", "LightStatus", 0), ("missing", "LightStatus", 1)]  # fmt: skip
    report = diff.report()
    assert "missing LightStatus on channel 1" in report and "--ignore-channels" in report
    assert compare_traces(reference, moved, dbc=DBC, ignore_channels=True).equal
    # One channel each, numbered differently: different channels all the same.
    other = write(tmp_path / "other.asc", frames(), lambda f: 1)
    single = write(tmp_path / "single.asc", frames())
    assert compare_traces(single, other, dbc=DBC).total_differences == 40
    status, out, _ = run_cli(capsys, str(single), str(other), "--dbc", str(DBC.source))
    assert status == 1 and "--ignore-channels" in out
    status, out, _ = run_cli(capsys, str(single), str(other), "--dbc", str(DBC.source),
                             "--ignore-channels")  # fmt: skip
    assert status == 0 and "- equal" in out
    # A format that records no channel (python-can's CSV) pairs across channels, and says so.
    classic = [(t, f) for t, f in frames() if not f.is_fd]  # CSV has no CAN FD flags
    csv = write(tmp_path / "candidate.csv", classic)
    diff = compare_traces(write(tmp_path / "classic.asc", classic, lambda f: 1), csv, dbc=DBC)
    assert diff.equal and "candidate's format records no channels" in diff.report()


# ---- options ----


TOLERANCE = "argument --tolerance: expected MSG.SIGNAL=ABS"


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--tolerance", "VehicleState.Speed=abc"], TOLERANCE + " with ABS a number of 0 or more"),
        (["--tolerance", "VehicleState.Speed"], TOLERANCE + ", not 'VehicleState.Speed'"),
        (["--tolerance", "VehicleState.Speed=-1"], TOLERANCE + " with ABS a number of 0 or more"),
        (["--window-ms", "-1"], "argument --window-ms: expected a number of 0 or more, not '-1'"),
        (["--window-ms", "nan"], "argument --window-ms: expected a number of 0 or more"),
        (["--show", "-3"], "argument --show: expected a whole number of 0 or more"),
    ],
)
def test_bad_option_values_are_usage_errors(
    reference: Path, capsys: pytest.CaptureFixture[str], option: list[str], message: str
) -> None:
    status, out, err = run_cli(capsys, str(reference), str(reference), *option)
    assert status == 2 and message in err and out == ""


def test_bad_window_and_tolerance_values_are_errors_in_python_too(reference: Path) -> None:
    with pytest.raises(CompareError, match="0 ms or more, not -1"):
        compare_traces(reference, reference, window_ms=-1)
    with pytest.raises(CompareError, match=r"tolerance \*\.Speed=-0.5"):
        compare_traces(reference, reference, tolerances={"*.Speed": -0.5})


def test_compare_is_a_cli_module_of_its_own() -> None:
    from harness.cli import compare, replay

    args = cli.parser().parse_args(["compare", "a.asc", "b.asc", "--window-ms", "1"])
    assert args.func is compare._compare and args.window_ms == 1.0
    assert not hasattr(replay, "_compare")
    assert cli.parser().parse_args(["replay", "t.asc"]).func is replay._replay


def test_an_early_frame_of_another_message_does_not_shift_the_rest(tmp_path: Path) -> None:
    """Both traces on one clock: a 0x7FF 4 ms later in the candidate must not move 0x200."""
    ref = tmp_path / "ref.log"
    ref.write_text("(100.000000) can0 7FF#00\n(101.000000) can0 100#01\n(101.010000) can0 200#02\n")
    cand = tmp_path / "cand.log"
    cand.write_text("(100.004000) can0 7FF#00\n(101.000000) can0 100#01\n"
                    "(101.014000) can0 200#02\n")  # fmt: skip
    only = compare_traces(ref, cand, messages=["0x200"], window_ms=1, whole=True)
    assert not only.equal and [d.kind for d in only.differences] == ["missing", "extra"]
    everything = compare_traces(ref, cand, window_ms=1, whole=True)
    assert sorted((d.kind, d.key) for d in everything.differences) == [
        ("extra", "0x200"), ("extra", "0x7FF"), ("missing", "0x200"), ("missing", "0x7FF")]
    # unrelated clocks: a hint, and --align-first counts each from its first compared frame
    shifted = tmp_path / "shifted.log"
    shifted.write_text("(5.000000) can0 100#01\n(5.010000) can0 200#02\n")
    apart = compare_traces(ref, shifted, messages=["0x100", "0x200"], window_ms=1)
    assert not apart.equal and "use --align-first" in apart.notes[0]
    aligned = compare_traces(ref, shifted, messages=["0x100", "0x200"], window_ms=1,
                             align_first=True)  # fmt: skip
    assert aligned.equal


def test_a_golden_window_of_the_candidate_is_compared_on_the_shared_clock(
    tmp_path: Path,
) -> None:
    """A reference cut from the candidate's recording (replay --start keeps the time base)
    must be compared where it lies, not against the candidate's first second."""
    golden = tmp_path / "golden.log"
    golden.write_text("".join(f"({2 + i / 100:.6f}) can0 300#00\n" for i in range(100)))
    candidate = tmp_path / "candidate.log"
    candidate.write_text("".join(f"({i / 100:.6f}) can0 300#{'01' if i >= 200 else '00'}\n"
                                 for i in range(300)))  # fmt: skip
    diff = compare_traces(golden, candidate, window_ms=1)
    assert not diff.equal and diff.total_differences == 100


def test_a_reference_frame_pairs_with_the_nearest_candidate_frame(tmp_path: Path) -> None:
    ref = tmp_path / "ref.log"
    ref.write_text("(1.000000) can0 7FF#00\n(1.010000) can0 100#01\n")
    cand = tmp_path / "cand.log"
    cand.write_text("(1.000000) can0 7FF#00\n(1.006000) can0 100#02\n(1.010000) can0 100#01\n")
    result = compare_traces(ref, cand, window_ms=5)
    assert [(d.kind, d.time_s) for d in result.differences] == [("extra", pytest.approx(0.006))]


def test_the_most_specific_tolerance_applies_and_decimals_are_exact(tmp_path: Path) -> None:
    ref = write(tmp_path / "ref.asc", [(0.0, DBC.encode("LightStatus", SupplyVoltage=13.5))])
    cand = write(tmp_path / "cand.asc", [(0.0, DBC.encode("LightStatus", SupplyVoltage=13.8))])
    for order in ([("*", 0.5), ("LightStatus.SupplyVoltage", 0.0)],
                  [("LightStatus.SupplyVoltage", 0.0), ("*", 0.5)]):  # fmt: skip
        diff = compare_traces(ref, cand, dbc=DBC, tolerances=dict(order), mask=[COUNTER])
        assert [d.kind for d in diff.differences] == ["value"], order
    within = compare_traces(ref, cand, dbc=DBC, mask=[COUNTER],
                            tolerances={"LightStatus.SupplyVoltage": 0.3})  # fmt: skip
    assert within.equal, within.report()


def test_a_selected_message_in_neither_trace_is_noted(tmp_path: Path) -> None:
    reference = write(tmp_path / "ref.asc", frames())
    diff = compare_traces(reference, reference, dbc=DBC, messages=["LightStatus", "LightCommand"])
    assert diff.equal and "selected but in neither trace: LightCommand" in diff.report()


def test_traces_offset_in_time_get_a_hint(tmp_path: Path) -> None:
    reference = write(tmp_path / "ref.asc", frames())
    shifted = write(tmp_path / "shifted.asc", [(t + 0.3, f) for t, f in frames()])
    diff = compare_traces(reference, shifted, dbc=DBC, window_ms=1)
    assert not diff.equal and "--align-first" in diff.report()
    assert compare_traces(reference, shifted, dbc=DBC, window_ms=1, align_first=True).equal
