"""The project DBC and the codec that sends and decodes its messages by name."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.dbc import PROJECT_DBC, Dbc, DbcError
from harness.network.frames import CanFrame

DBC = Dbc.load()


def test_the_matrix_covers_classic_fd_extended_and_multiplexed_messages() -> None:
    messages = {m.name: m for m in DBC.database.messages}
    assert not messages["VehicleState"].is_fd and messages["VehicleState"].cycle_time == 10
    assert messages["LightStatus"].is_fd and messages["LightStatus"].length == 16
    assert messages["LightDiag"].is_fd and messages["LightDiag"].is_multiplexed()
    assert messages["ElcNetworkManagement"].is_extended_frame
    speed = messages["VehicleState"].get_signal_by_name("Speed")
    accel = messages["VehicleState"].get_signal_by_name("LongAccel")
    temperature = messages["LightCommand"].get_signal_by_name("Temperature")
    assert speed.scale == 0.01 and speed.unit == "km/h"
    assert accel.is_signed and accel.byte_order == "big_endian"
    assert temperature.offset == -40 and temperature.is_signed
    assert messages["VehicleState"].get_signal_by_name("TurnRequest").choices[3] == "Hazard"


def test_encode_by_name_fills_the_rest_with_start_values() -> None:
    frame = DBC.encode("LightStatus", BrakeLamp=1)
    assert frame.is_fd and frame.brs and len(frame.data) == 16
    decoded = DBC.decode(frame)
    assert decoded is not None and decoded.name == "LightStatus"
    assert decoded.signals["BrakeLamp"] == 1
    assert decoded.signals["SupplyVoltage"] == pytest.approx(13.5)  # GenSigStartValue


def test_value_table_names_in_and_out() -> None:
    frame = DBC.encode("VehicleState", TurnRequest="Hazard", BrakePedal="Pressed")
    decoded = DBC.decode(frame)
    assert decoded is not None
    assert decoded.signals["TurnRequest"] == "Hazard" and decoded.signals["BrakePedal"] == "Pressed"


def test_multiplexed_pages() -> None:
    page0 = DBC.decode(DBC.encode("LightDiag", DiagPage=0, BrakeLampCurrent=1.25))
    page1 = DBC.decode(DBC.encode("LightDiag", DiagPage=1, RxFrames=4242))
    assert page0 is not None and page0.signals["BrakeLampCurrent"] == pytest.approx(1.25)
    assert page1 is not None and page1.signals["RxFrames"] == 4242
    assert "BrakeLampCurrent" not in page1.signals


def test_extended_id_message() -> None:
    frame = DBC.encode("ElcNetworkManagement", NmSourceNode=0x10)
    assert frame.is_extended and frame.arbitration_id == 0x18FF0010
    wrong_kind = CanFrame(0x10, frame.data[:8])
    assert DBC.decode(wrong_kind) is None


@given(st.floats(0, 655.35), st.floats(-32.768, 32.767), st.integers(-168, 87))
def test_round_trip_of_scaled_signed_and_big_endian_signals(
    speed: float, accel: float, temperature: int
) -> None:
    state = DBC.decode(DBC.encode("VehicleState", Speed=speed, LongAccel=accel))
    assert state is not None
    assert state.signals["Speed"] == pytest.approx(speed, abs=0.005 + 1e-9)
    assert state.signals["LongAccel"] == pytest.approx(accel, abs=0.0005 + 1e-9)
    command = DBC.decode(DBC.encode("LightCommand", Temperature=temperature))
    assert command is not None and command.signals["Temperature"] == temperature


def test_unknown_ids_stay_raw() -> None:
    assert DBC.decode(CanFrame(0x7FF, b"\x01")) is None


@pytest.mark.parametrize(
    ("name", "signals", "message"),
    [
        ("VehicleStat", {}, "no message named 'VehicleStat'; did you mean VehicleState"),
        ("VehicleState", {"Sped": 1}, "VehicleState has no signal Sped; its signals: Speed"),
        ("VehicleState", {"Speed": 700}, r"Speed=700 km/h is outside 0\.\.655\.35 km/h"),
        ("VehicleState", {"Speed": -1}, "Speed=-1 km/h is outside"),
        ("VehicleState", {"BrakePedal": "Maybe"}, "no value named 'Maybe'; values: Released"),
    ],
)
def test_mistakes_are_explained(name: str, signals: dict[str, object], message: str) -> None:
    with pytest.raises(DbcError, match=message):
        DBC.encode(name, **signals)


def test_malformed_dbc_names_the_file_and_the_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.dbc"
    lines = PROJECT_DBC.read_text().splitlines()
    lines[12] = ' SG_ Speed : 0|16@1+ (0.01,0 [0|655.35] "km/h" ELC'  # missing ')'
    broken.write_text("\n".join(lines))
    with pytest.raises(DbcError, match=r"broken\.dbc: not a valid DBC: .*line 13"):
        Dbc.load(broken)
    with pytest.raises(DbcError, match=r"missing\.dbc: cannot read"):
        Dbc.load(tmp_path / "missing.dbc")


def test_a_multiplexer_value_the_dbc_does_not_describe_is_kept_raw_and_flagged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import can

    from harness.replay.compare import compare_traces

    dbc = Dbc.load()
    page7 = CanFrame(0x310, bytes([7]) + bytes(63), is_fd=True)  # LightDiag has pages 0-2
    decoded = dbc.decode(page7)
    assert decoded is not None and decoded.name == "LightDiag" and decoded.signals == {}
    assert decoded.problem is not None and "LightDiag: cannot decode 07" in decoded.problem
    assert dbc.decode(page7) is not None
    assert len([r for r in caplog.records if "LightDiag" in r.getMessage()]) == 1  # said once
    # Compared by raw bytes, never fatal: the same frame matches, a different one differs.
    paths = []
    for name, last in (("a.asc", 0), ("b.asc", 1)):
        with can.Logger(str(tmp_path / name)) as out:
            data = bytes([7]) + bytes(62) + bytes([last])
            out.on_message_received(can.Message(timestamp=1.0, arbitration_id=0x310, data=data,
                                                is_extended_id=False, is_fd=True))  # fmt: skip
        paths.append(tmp_path / name)
    assert compare_traces(paths[0], paths[0], dbc=dbc).equal
    diff = compare_traces(paths[0], paths[1], dbc=dbc)
    assert not diff.equal and "LightDiag" in diff.report()


def test_a_dbc_cut_short_names_the_definition_that_did_not_load(tmp_path: Path) -> None:
    text = PROJECT_DBC.read_text()
    cut = tmp_path / "cut.dbc"
    cut.write_text(text[: text.index("BO_ 784") + 12])  # cantools loads it, without LightDiag
    with pytest.raises(DbcError, match=r"cut\.dbc: line \d+: message definition not understood "
                       r"\(cut short\?\): 'BO_ 784 Ligh'"):  # fmt: skip
        Dbc.load(cut)
    lines = text.splitlines(keepends=True)
    broken = tmp_path / "broken.dbc"  # a signal cut mid-line: an error with its line, too
    at = next(i for i, line in enumerate(lines) if line.startswith(" SG_ DiagPage"))
    cut_signal = " SG_ DiagPage M : 0|8@1+ (1,0) [0|\n"
    broken.write_text("".join([*lines[:at], cut_signal, *lines[at + 1 :]]))
    with pytest.raises(DbcError, match=r"broken\.dbc: .*line \d+"):  # cantools names this one
        Dbc.load(broken)


def test_a_name_for_a_signal_without_value_table_says_so() -> None:
    with pytest.raises(DbcError, match=r"VehicleState\.Speed: 'fast' is a value name, but the "
                       r"signal has no value table"):  # fmt: skip
        Dbc.load().encode("VehicleState", Speed="fast")
