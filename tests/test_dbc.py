"""The project DBC and the codec that sends and decodes its messages by name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.dbc import PROJECT_DBC, Dbc, DbcError
from harness.frames.can import CanFrame

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


def test_a_dbc_cut_inside_its_last_statement_is_refused(tmp_path: Path) -> None:
    # The user's file: cut inside the start value's BA_ line, no final newline. cantools
    # (textparser) accepts any file whose last statement breaks off at the end: it loaded
    # with SupplyVoltage starting at 0.0 instead of 13.5 and no value tables.
    text = PROJECT_DBC.read_text()
    cut_at = text.index('BA_ "GenSigStartValue" SG_ 768 SupplyVol') + 40
    cut = tmp_path / "cut.dbc"
    cut.write_text(text[:cut_at])
    line = text[:cut_at].count("\n") + 1
    with pytest.raises(DbcError, match=rf"cut\.dbc: line {line}: the file ends inside this BA_ "
                       r"statement, before its ';' \(cut short\?\): "
                       r"'BA_ \"GenSigStartValue\" SG_ 768 SupplyVol'"):  # fmt: skip
        Dbc.load(cut)
    # Cut anywhere inside any statement after the last message (two places each, and just
    # before its ';'), the file is refused with the line the statement starts on.
    starts = [m.start() for m in re.finditer(r"^(CM_|BA_DEF_|BA_DEF_DEF_|BA_|VAL_) ", text, re.M)]
    assert len(starts) > 30
    for start in starts:
        end = text.index(";", start)
        for at in {start + 4, (start + end) // 2, end}:
            cut.write_text(text[:at])
            line = text[:start].count("\n") + 1
            with pytest.raises(DbcError, match=rf"cut\.dbc: line {line}: .*cut short"):
                Dbc.load(cut)
    # Cut inside a string: the file ends in it.
    cut.write_text(text[: text.index('"Lamp status') + 5])
    with pytest.raises(DbcError, match=r"cut\.dbc: line \d+: the file ends inside a string "
                       r"\(cut short\?.*\): 'CM_ BO_ 768 \"Lamp'"):  # fmt: skip
        Dbc.load(cut)
    # Cut right after a ';' (or after the last signal) the file is whole, as far as anyone
    # can tell: it loads, and what it holds is right.
    whole = tmp_path / "whole.dbc"
    whole.write_text(text[: text.index("VAL_ 288")].rstrip())  # no final newline either
    dbc = Dbc.load(whole)
    decoded = dbc.decode(dbc.encode("VehicleState", BrakePedal="Pressed"))
    assert decoded is not None and decoded.signals["BrakePedal"] == "Pressed"
    whole.write_text(text[: text.index("\n\n\nCM_")])
    assert Dbc.load(whole).names == DBC.names


TWINS = """VERSION ""

NS_ :

BS_:

BU_: ECU Other

BO_ 256 First: 8 Other
 SG_ A : 0|8@1+ (1,0) [0|255] "" ECU

BO_ 2147483904 ExtendedTwin: 8 Other
 SG_ B : 0|8@1+ (1,0) [0|255] "" ECU

BO_ 257 Second: 8 Other
 SG_ C : 0|8@1+ (1,0) [0|255] "" ECU
"""


def test_two_messages_with_the_same_id_are_refused(tmp_path: Path) -> None:
    # cantools keeps the last one for decoding and only logs a warning: every frame of ID
    # 0x100 decoded as Second. A standard and an extended ID with the same number differ.
    path = tmp_path / "twins.dbc"
    path.write_text(TWINS)
    dbc = Dbc.load(path)
    assert dbc.names == ["First", "ExtendedTwin", "Second"]
    path.write_text(TWINS.replace("BO_ 257 Second", "BO_ 256 Second"))
    with pytest.raises(DbcError, match=r"twins\.dbc: line 15: Second has the same ID, 0x100, "
                       r"as First \(line 9\)"):  # fmt: skip
        Dbc.load(path)
    path.write_text(TWINS.replace("BO_ 257 Second", "BO_ 2147483904 Second"))
    with pytest.raises(DbcError, match=r"line 15: Second has the same ID, 0x100x, as "
                       r"ExtendedTwin \(line 12\)"):  # fmt: skip
        Dbc.load(path)


def test_two_messages_with_the_same_name_are_refused(tmp_path: Path) -> None:
    # It was reported as "signal of First did not load", about the first message's signal.
    path = tmp_path / "twins.dbc"
    path.write_text(TWINS.replace("BO_ 257 Second", "BO_ 257 First"))
    with pytest.raises(DbcError, match=r"twins\.dbc: line 15: a second message named First "
                       r"\(ID 0x101; the first, line 9, has ID 0x100\)"):  # fmt: skip
        Dbc.load(path)


SPACED = """VERSION ""

NS_ :
\tBA_
\tCM_

BS_:

BU_: ECU Other

BO_ 256 First: 8 Other
 SG_ A : 0|8@1+ (1,0) [0|255] "" ECU
  BO_ 257 Indented: 8 Other
SG_ AtLineStart : 0|8@1+ (1,0) [0|255] "" ECU
\tSG_\tTabbed m1 : 8|8@1+ (1,0) [0|255] "" ECU
 SG_ Selector M : 16|8@1+ (1,0) [0|255] "" ECU
\tBO_\t3221225472 VECTOR__INDEPENDENT_SIG_MSG: 0 Vector__XXX
 SG_ Loose : 0|8@1+ (1,0) [0|255] "" Vector__XXX
BO_ 258 Third: 8 Other
 SG_ Sig_will_be_shortened_3456789_12 : 0|8@1+ (1,0) [0|255] "" ECU

CM_ BO_ 256 "A comment of several lines,
BO_ 999 Ghost: 8 Other
 SG_ Phantom : 0|8@1+ (1,0) [0|255] \\"\\" ECU
which only looks like definitions.";
BA_DEF_ SG_  "SystemSignalLongSymbol" STRING ;
BA_DEF_DEF_  "SystemSignalLongSymbol" "";
  BA_ "SystemSignalLongSymbol"
    SG_ 258 Sig_will_be_shortened_3456789_12 "Sig_will_be_shortened_3456789_123456";
"""


def test_definitions_are_found_as_cantools_finds_them(tmp_path: Path) -> None:
    # Leading whitespace before BO_ (cantools loads it) was refused as "signal of First did
    # not load"; so was an SG_ at the start of a line. A comment that spans lines is one
    # string, not definitions; an indented or split long-name attribute still names the
    # signal; the signals of Vector's container for loose signals are not looked for.
    path = tmp_path / "spaced.dbc"
    path.write_text(SPACED)
    dbc = Dbc.load(path)
    assert dbc.names == ["First", "Indented", "Third"]
    assert {s.name for s in dbc.message("Indented").signals} == {"AtLineStart", "Tabbed",
                                                                 "Selector"}  # fmt: skip
    assert [s.name for s in dbc.message("Third").signals] == [
        "Sig_will_be_shortened_3456789_123456"
    ]
    decoded = dbc.decode(dbc.encode("Indented", Selector=1, Tabbed=5))
    assert decoded is not None and decoded.signals["Tabbed"] == 5
    # A signal cut at the end of an indented message is still named, with its message.
    cut = tmp_path / "cut.dbc"
    cut.write_text(SPACED[: SPACED.index(" SG_ Selector") + 15])
    with pytest.raises(DbcError, match=r"cut\.dbc: line 16: signal Selector of Indented did "
                       r"not load \(cut short\?\): 'SG_ Selector M'"):  # fmt: skip
        Dbc.load(cut)


def test_a_name_for_a_signal_without_value_table_says_so() -> None:
    with pytest.raises(DbcError, match=r"VehicleState\.Speed: 'fast' is a value name, but the "
                       r"signal has no value table"):  # fmt: skip
        Dbc.load().encode("VehicleState", Speed="fast")


# ---- found by cantools' own DBC files (tests/test_corpora.py) ----

CORNERS = """VERSION ""

NS_ :

BS_:

BU_: ECU Other

BO_ 2147483705 ExtSmall: 8 Other
 SG_ A : 0|8@1+ (1,0) [0|255] "" ECU

BO_ 57 StdSmall: 8 Other
 SG_ B : 0|8@1+ (1,0) [0|255] "" ECU

BO_ 100 Scaled: 8 Other
 SG_ Temp : 0|12@1+ (-0.01,4100) [4070|4100] "degK" ECU
 SG_ Plus : 16|8@1- (1,-128) [-128|127] "" ECU
 SG_ Shifted : 24|7@1+ (1,1) [0|128] "" ECU
 SG_ Signed : 32|8@1- (1,0) [-128|127] "" ECU

BO_ 101 TooLong: 10 Other
 SG_ C : 0|8@1+ (1,0) [0|255] "" ECU

BO_ 105 FdTen: 10 Other
 SG_ D : 72|8@1+ (1,0) [0|255] "" ECU

BO_ 102 Paged: 8 Other
 SG_ Page M : 0|8@1+ (1,0) [0|255] "" ECU
 SG_ OnThree m3 : 8|8@1+ (1,0) [0|255] "" ECU
 SG_ OnFive m5 : 8|8@1+ (1,0) [0|255] "" ECU

BO_ 104 Started: 1 Other
 SG_ OutOfRange : 0|8@1+ (1,0) [0|250] "" ECU

BA_DEF_ SG_  "GenSigStartValue" INT -2147483648 2147483647;
BA_DEF_ BO_  "VFrameFormat" ENUM  "StandardCAN","ExtendedCAN","reserved","reserved","reserved",\
"reserved","reserved","reserved","reserved","reserved","reserved","reserved","reserved","reserved",\
"StandardCAN_FD","ExtendedCAN_FD";
BA_DEF_DEF_  "VFrameFormat" "StandardCAN";
BA_ "GenSigStartValue" SG_ 100 Temp 4094;
BA_ "GenSigStartValue" SG_ 104 OutOfRange 254;
BA_ "VFrameFormat" BO_ 105 14;
VAL_ 100 Temp 4095 "Error" 4094 "Init" ;
VAL_ 100 Signed 255 "NotAvailable" 1 "One" ;
"""


@pytest.fixture()
def corners(tmp_path: Path) -> Dbc:
    path = tmp_path / "corners.dbc"
    path.write_text(CORNERS)
    return Dbc.load(path)


def test_an_extended_id_of_0x7ff_or_less_is_not_a_standard_one(corners: Dbc) -> None:
    # cantools' lookup takes 0x39 for a standard ID: the extended message decoded as unknown
    # (attributes.dbc, fd_test.dbc, motohawk_fd.dbc), and here it has a standard twin.
    extended = corners.encode("ExtSmall", A=7)
    assert extended.is_extended and extended.arbitration_id == 0x39
    decoded = corners.decode(extended)
    assert decoded is not None and decoded.name == "ExtSmall" and decoded.signals == {"A": 7}
    standard = corners.decode(CanFrame(0x39, bytes(8)))
    assert standard is not None and standard.name == "StdSmall"


LONG_NAMES = """VERSION ""

NS_ :

BS_:

BU_: ECU

BO_ 103 Msg_will_be_shortened_3456789_12: 8 ECU
 SG_ Sig_will_be_shortened_3456789_12 : 0|8@1+ (1,0) [0|255] "" ECU

BA_DEF_ BO_  "SystemMessageLongSymbol" STRING ;
BA_DEF_ SG_  "SystemSignalLongSymbol" STRING ;
BA_DEF_DEF_  "SystemMessageLongSymbol" "";
BA_DEF_DEF_  "SystemSignalLongSymbol" "";
BA_ "SystemMessageLongSymbol" BO_ 103 "Msg_will_be_shortened_3456789_123456";
BA_ "SystemSignalLongSymbol" SG_ 103 Sig_will_be_shortened_3456789_12 \
"Sig_will_be_shortened_3456789_123456";
"""


def test_long_names_load(tmp_path: Path) -> None:
    # BO_/SG_ lines hold 32-character short names, SystemMessageLongSymbol and
    # SystemSignalLongSymbol the real ones, which cantools uses (long_names.dbc, issue_784.dbc):
    # the check that every definition loaded refused such files.
    path = tmp_path / "long.dbc"
    path.write_text(LONG_NAMES)
    dbc = Dbc.load(path)
    name = "Msg_will_be_shortened_3456789_123456"
    assert dbc.names == [name]
    decoded = dbc.decode(dbc.encode(name, Sig_will_be_shortened_3456789_123456=5))
    assert decoded is not None and decoded.signals == {"Sig_will_be_shortened_3456789_123456": 5}
    cut = tmp_path / "cut.dbc"  # a signal that did not load is still named
    cut.write_text(LONG_NAMES.replace("[0|255]", "[0|255"))
    with pytest.raises(DbcError, match=r"cut\.dbc"):
        Dbc.load(cut)


def test_value_names_of_a_scaled_signal_encode_their_raw_value(corners: Dbc) -> None:
    # Temp = 4100 - 0.01 * raw, "Error" is raw 4095: the name's raw value was passed on as a
    # physical one (raw 500), which decodes as 4095.0, silently (issue_636_negative_scaling.dbc).
    frame = corners.encode("Scaled", Temp="Error")
    assert int.from_bytes(frame.data[:2], "little") & 0xFFF == 4095
    decoded = corners.decode(frame)
    assert decoded is not None and decoded.signals["Temp"] == "Error"
    # A start value that is a value-table entry ("Init", raw 4094) crashed encode().
    started = corners.decode(corners.encode("Scaled"))
    assert started is not None and started.signals["Temp"] == "Init"


def test_defaults_fit_the_raw_field_and_values_that_do_not_are_explained(corners: Dbc) -> None:
    # Plus: 8-bit signed with offset -128 holds -256..-1 though the DBC says -128..127
    # (issue_207_sig_plus.dbc); Shifted: 7 bits with offset 1 hold 1..128, the DBC says 0..128
    # (vehicle.dbc). The default, 0, crashed with cantools' OverflowError.
    decoded = corners.decode(corners.encode("Scaled"))
    assert decoded is not None
    assert (decoded.signals["Plus"], decoded.signals["Shifted"]) == (-1, 1)  # nearest 0
    with pytest.raises(DbcError, match=r"Plus=0 does not fit its 8-bit signed field, which "
                       r"holds -256\.\.-1"):  # fmt: skip
        corners.encode("Scaled", Plus=0)
    with pytest.raises(DbcError, match=r"Shifted=0 does not fit its 7-bit unsigned field"):
        corners.encode("Scaled", Shifted=0)
    with pytest.raises(DbcError, match=r"Signed='NotAvailable' is 255 in the value table, which "
                       r"its 8-bit signed field cannot hold \(-128\.\.127\)"):  # fmt: skip
        corners.encode("Scaled", Signed="NotAvailable")  # empty_choice.dbc


def test_frame_lengths_classic_and_fd(corners: Dbc) -> None:
    # A 10-byte message that is not CAN FD crashed with a FrameError (variable_dlc.dbc).
    with pytest.raises(DbcError, match=r"corners\.dbc: TooLong is 10 bytes long, more than a "
                       r"classic CAN frame carries \(8\)"):  # fmt: skip
        corners.encode("TooLong")
    padded = corners.encode("FdTen", D=9)  # FD carries 12 bytes, not 10
    assert padded.is_fd and len(padded.data) == 12 and padded.data[9] == 9


def test_start_values_of_multiplexers_and_out_of_range(corners: Dbc) -> None:
    # A multiplexer whose start value (here 0) selects no page starts on its first page, as
    # its value nearest 0 (multiplex.dbc: pages 8, 16, 24; encode() failed in cantools).
    first = corners.decode(corners.encode("Paged"))
    assert first is not None and first.signals == {"Page": 3, "OnThree": 0}
    fifth = corners.decode(corners.encode("Paged", Page=5, OnFive=7))
    assert fifth is not None and fifth.signals == {"Page": 5, "OnFive": 7}
    with pytest.raises(DbcError, match=r"specified but are not required.*OnFive"):
        corners.encode("Paged", Page=3, OnFive=7)  # a signal of another page is a mistake
    # A start value outside the signal's range is named as the DBC's (issue_725.dbc).
    with pytest.raises(DbcError, match=r"OutOfRange=254\.0 is outside 0\.\.250 \(the DBC's "
                       r"start value; give it a value\)"):  # fmt: skip
        corners.encode("Started")
    assert corners.decode(corners.encode("Started", OutOfRange=250)) is not None
