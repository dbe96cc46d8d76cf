"""The project LDF, and the layer over ldfparser that encodes and decodes its frames by name and
refuses a malformed LDF with the file, the line and the reason."""

from __future__ import annotations

import re
from pathlib import Path

import ldfparser  # type: ignore[import-untyped]
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.ldf import PROJECT_LDF, Ldf, LdfError, LdfFrame, Slot

LDF = Ldf.load()
TEXT = PROJECT_LDF.read_text()


def test_the_project_ldf_parses_with_ldfparser_itself() -> None:
    cluster = ldfparser.parse_ldf(str(PROJECT_LDF))
    assert cluster.get_master().name == "ELC"
    assert cluster.get_event_triggered_frame("LampFaultEvent").frame_id == 0x23


def test_the_cluster() -> None:
    assert LDF.source == str(PROJECT_LDF)
    assert LDF.bitrate == 19200
    assert LDF.protocol_version == LDF.language_version == "2.1"
    assert LDF.master == "ELC" and LDF.slaves == ("SCS", "LAMP_L", "LAMP_R")
    assert LDF.nodes == ("ELC", "SCS", "LAMP_L", "LAMP_R")
    assert LDF.time_base_ms == 5.0 and LDF.jitter_ms == 0.1


def test_the_frames() -> None:
    layout = {name: (f.frame_id, f.length, f.publisher, f.subscribers, f.kind, f.enhanced)
              for name, f in LDF.frames.items()}  # fmt: skip
    assert layout == {
        "SwitchStatus": (0x10, 2, "SCS", ("ELC",), "unconditional", True),
        "LampCommand": (0x20, 2, "ELC", ("LAMP_L", "LAMP_R"), "unconditional", True),
        "LampLeftStatus": (0x21, 3, "LAMP_L", ("ELC",), "unconditional", True),
        "LampRightStatus": (0x22, 3, "LAMP_R", ("ELC",), "unconditional", True),
        "LampFaultEvent": (0x23, 3, None, ("ELC",), "event_triggered", True),
        "MasterReq": (0x3C, 8, "ELC", ("SCS", "LAMP_L", "LAMP_R"), "diagnostic", False),
        "SlaveResp": (0x3D, 8, None, ("ELC",), "diagnostic", False),
    }
    assert LDF.frames["SwitchStatus"].signals == (
        "TurnStalk", "LightSwitch", "HighBeamFlash", "ScsResponseError", "ScsSupply")  # fmt: skip
    assert LDF.frames["LampCommand"].signals == (
        "TurnLeftOn", "TurnRightOn", "LowBeamOn", "HighBeamOn", "LampBrightness")  # fmt: skip
    event = LDF.frames["LampFaultEvent"]
    assert event.associated == ("LampLeftStatus", "LampRightStatus")
    assert event.publishers == ("LAMP_L", "LAMP_R") and event.collision_table == "CollisionTable"
    assert LDF.frames["SlaveResp"].publishers == ("SCS", "LAMP_L", "LAMP_R")
    assert LDF.frame(0x21) is LDF.frame("LampLeftStatus")


def test_the_signals_bits_and_encodings() -> None:
    placed = {name: (s.placements, s.width, s.init) for name, s in LDF.signals.items()
              if not name.startswith(("MasterReq", "SlaveResp"))}  # fmt: skip
    assert placed == {
        "TurnStalk": ((("SwitchStatus", 0),), 2, 0),
        "LightSwitch": ((("SwitchStatus", 2),), 2, 0),
        "HighBeamFlash": ((("SwitchStatus", 4),), 1, 0),
        "ScsResponseError": ((("SwitchStatus", 5),), 1, 0),
        "ScsSupply": ((("SwitchStatus", 8),), 8, 0),
        "TurnLeftOn": ((("LampCommand", 0),), 1, 0),
        "TurnRightOn": ((("LampCommand", 1),), 1, 0),
        "LowBeamOn": ((("LampCommand", 2),), 1, 0),
        "HighBeamOn": ((("LampCommand", 3),), 1, 0),
        "LampBrightness": ((("LampCommand", 8),), 8, 200),
        "LampLeftFault": ((("LampLeftStatus", 8),), 1, 0),
        "LampLeftResponseError": ((("LampLeftStatus", 9),), 1, 0),
        "LampLeftTemp": ((("LampLeftStatus", 16),), 8, 60),
        "LampRightFault": ((("LampRightStatus", 8),), 1, 0),
        "LampRightResponseError": ((("LampRightStatus", 9),), 1, 0),
        "LampRightTemp": ((("LampRightStatus", 16),), 8, 60),
    }
    assert LDF.signals["MasterReqB7"].placements == (("MasterReq", 56),)
    turn = LDF.signals["TurnStalk"]
    assert turn.logical == ((0, "Off"), (1, "Left"), (2, "Right"), (3, "Error"))
    assert dict(LDF.signals["LightSwitch"].logical) == {0: "Off", 1: "Parking", 2: "LowBeam",
                                                       3: "Auto"}  # fmt: skip
    assert dict(LDF.signals["LampRightFault"].logical) == {0: "Ok", 1: "Fault"}
    names = ("ScsSupply", "LampBrightness", "LampLeftTemp")
    supply, brightness, temp = (LDF.signals[n].physical[0] for n in names)
    assert (supply.raw_min, supply.raw_max, supply.scale, supply.unit) == (0, 255, 0.1, "V")
    assert str(supply) == "0..25.5 V" and str(brightness) == "0..100 %"
    assert (temp.scale, temp.offset, str(temp)) == (1.0, -40.0, "-40..215 degC")


def test_the_schedule_tables() -> None:
    assert LDF.schedules == {
        "NormalTable": (Slot("SwitchStatus", 0x10, 10.0), Slot("LampCommand", 0x20, 10.0),
                        Slot("LampFaultEvent", 0x23, 10.0)),
        "CollisionTable": (Slot("LampLeftStatus", 0x21, 10.0), Slot("LampRightStatus", 0x22, 10.0)),
        "DiagTable": (Slot("MasterReq", 0x3C, 10.0), Slot("SlaveResp", 0x3D, 10.0)),
    }  # fmt: skip


def test_published_by() -> None:
    assert [f.name for f in LDF.published_by("ELC")] == ["LampCommand", "MasterReq"]
    assert [f.name for f in LDF.published_by("LAMP_R")] == [
        "LampRightStatus", "LampFaultEvent", "SlaveResp"]  # fmt: skip
    with pytest.raises(LdfError, match=r"no node named 'BCM' \(nodes: ELC, SCS, LAMP_L, LAMP_R\)"):
        LDF.published_by("BCM")


def test_initial_values() -> None:
    # bits no signal covers are recessive (1), as ISO 17987-2 asks
    assert LDF.initial("LampCommand") == bytes([0xF0, 200])
    assert LDF.initial("LampLeftStatus") == bytes([0xFF, 0xFC, 60])
    assert LDF.decode("LampCommand", LDF.initial("LampCommand")) == {
        "TurnLeftOn": 0, "TurnRightOn": 0, "LowBeamOn": 0, "HighBeamOn": 0,
        "LampBrightness": 100.0}  # fmt: skip
    assert LDF.decode("LampLeftStatus", LDF.initial(0x21)) == {
        "LampLeftFault": "Ok", "LampLeftResponseError": 0, "LampLeftTemp": 20.0}  # fmt: skip
    assert LDF.encode("LampCommand", LowBeamOn=1) == bytes([0xF4, 200])  # the rest: init values


def test_logical_and_physical_values_in_and_out() -> None:
    data = LDF.encode("SwitchStatus", TurnStalk="Right", LightSwitch="LowBeam", HighBeamFlash=1,
                      ScsSupply=13.8)  # fmt: skip
    assert data == bytes([0b1101_1010, 138])  # bits 6 and 7 unused: recessive
    assert LDF.decode("SwitchStatus", data) == {
        "TurnStalk": "Right", "LightSwitch": "LowBeam", "HighBeamFlash": 1, "ScsResponseError": 0,
        "ScsSupply": 13.8}  # fmt: skip
    assert LDF.decode("SwitchStatus", data, raw=True)["ScsSupply"] == 138
    assert LDF.encode("SwitchStatus", TurnStalk=2) == LDF.encode("SwitchStatus", TurnStalk="Right")
    status = LDF.encode("LampRightStatus", LampRightFault="Fault", LampRightTemp=-40)
    assert status == bytes([0xFF, 0xFD, 0])  # byte 0 and bits 10..15 unused: recessive
    assert LDF.decode("LampRightStatus", status)["LampRightTemp"] == -40.0
    assert LDF.decode("MasterReq", LDF.encode("MasterReq", MasterReqB0=0x7F))["MasterReqB0"] == 0x7F


@given(st.data())
def test_every_frame_round_trips_values_its_encodings_allow(data: st.DataObject) -> None:
    for frame in LDF.frames.values():
        if frame.kind == "event_triggered":
            continue
        values: dict[str, int | float | str] = {}
        for name in frame.signals:
            signal = LDF.signals[name]
            choices: list[st.SearchStrategy[int | float | str]] = []
            if signal.logical:
                choices.append(st.sampled_from([t for _, t in signal.logical if t]))
            for p in signal.physical:
                choices.append(st.integers(p.raw_min, p.raw_max).map(p.value))
            if not choices:
                choices.append(st.integers(0, (1 << signal.width) - 1))
            values[name] = data.draw(st.one_of(choices), label=name)
        encoded = LDF.encode(frame.name, **values)
        assert LDF.decode(frame.name, encoded) == pytest.approx(values)
        assert LDF.encode(frame.name, **LDF.decode(frame.name, encoded)) == encoded


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: LDF.frame("LampComand"),
         r"exterior_light\.ldf: no frame named 'LampComand'; did you mean LampCommand"),
        (lambda: LDF.frame(0x30), r"no frame with ID 0x30; frames: 0x10 SwitchStatus, "),
        (lambda: LDF.encode("LampCommand", Brightness=50),
         r"^LampCommand has no signal Brightness; its signals: TurnLeftOn, TurnRightOn, "
         r"LowBeamOn, HighBeamOn, LampBrightness$"),
        (lambda: LDF.encode("LampCommand", LampBrightness=120),
         r"^LampCommand\.LampBrightness=120 is outside its range 0\.\.100 %$"),
        (lambda: LDF.encode("LampCommand", LampBrightness=-1),
         r"^LampCommand\.LampBrightness=-1 is outside its range 0\.\.100 %$"),
        (lambda: LDF.encode("SwitchStatus", TurnStalk="Up"),
         r"^SwitchStatus\.TurnStalk: no logical value named 'Up'; values: Off, Left, Right, "
         r"Error$"),
        (lambda: LDF.encode("SwitchStatus", TurnStalk=4),
         r"^SwitchStatus\.TurnStalk=4 does not fit its 2-bit field \(0\.\.3\)"),
        (lambda: LDF.encode("SwitchStatus", HighBeamFlash=2),
         r"^SwitchStatus\.HighBeamFlash=2 does not fit its 1-bit field \(0\.\.1\)$"),
        (lambda: LDF.encode("SwitchStatus", HighBeamFlash="On"),
         r"^SwitchStatus\.HighBeamFlash: 'On' is a value name, but the signal has no logical "),
        (lambda: LDF.encode("SwitchStatus", ScsSupply=float("nan")),
         r"^SwitchStatus\.ScsSupply: nan is neither a number nor a value name$"),
        (lambda: LDF.decode("LampCommand", b"\x00"),
         r"^LampCommand is 2 bytes long; got 1: 00$"),
        (lambda: LDF.decode("LampCommand", b"\x00\xc9"),
         r"^LampCommand\.LampBrightness: raw value 201 is outside its encoding BrightnessEncoding "
         r"\(0\.\.100 %\); decode with raw=True"),
        (lambda: LDF.encode("LampFaultEvent"),
         r"^LampFaultEvent is an event-triggered frame: its data is that of one of its frames "
         r"\(LampLeftStatus, LampRightStatus\)"),
    ],
)  # fmt: skip
def test_mistakes_in_use_say_what_is_wrong(call: object, message: str) -> None:
    assert callable(call)
    with pytest.raises(LdfError, match=message):
        call()


def test_raw_values_outside_the_encoding_decode_raw() -> None:
    assert LDF.decode("LampCommand", b"\x00\xc9", raw=True)["LampBrightness"] == 201


# ---- malformed LDFs: the file, the line and column, the reason ----

# (name, text replaced in the project LDF, its replacement, where the error is: the first
# occurrence of this text in the broken file, or its END; the reason as a regex)
END = "<end of the file>"
BROKEN = [
    ("syntax", "Slaves: SCS, LAMP_L, LAMP_R;", "Slaves: SCS, LAMP_L LAMP_R;", "LAMP_R;",
     r"unexpected 'LAMP_R'; expected ',' or ';'"),
    ("character", "LIN_speed = 19.2 kbps;", "LIN_speed = 19.2 kbps; $", "$",
     r"unexpected character '\$'; expected 'Channel_name', 'Diagnostic_addresses', "),
    ("cut short", TEXT[TEXT.index("Schedule_tables"):],
     "Schedule_tables {\n  NormalTable {\n    SwitchStatus delay", END,
     r"the file ends here \(cut short\?\); expected a number"),
    ("frame ID", "SwitchStatus: 0x10, SCS, 2", "SwitchStatus: 0x40, SCS, 2", "0x40",
     r"frame SwitchStatus: ID 0x40 is not a LIN frame ID \(0x00\.\.0x3F\)"),
    ("event ID", "LampFaultEvent: CollisionTable, 0x23", "LampFaultEvent: CollisionTable, 0x4F",
     "0x4F", r"frame LampFaultEvent: ID 0x4F is not a LIN frame ID"),
    ("diagnostic ID", "SwitchStatus: 0x10, SCS, 2", "SwitchStatus: 0x3C, SCS, 2", "0x3C, SCS",
     r"frame SwitchStatus: ID 0x3C belongs to the diagnostic frames"),
    ("diagnostic frame ID", "SlaveResp: 0x3D {", "SlaveResp: 0x3E {", "0x3E",
     r"diagnostic frame SlaveResp: ID 0x3E; a diagnostic frame is the master request"),
    ("length 9", "SwitchStatus: 0x10, SCS, 2", "SwitchStatus: 0x10, SCS, 9", "9 {",
     r"frame SwitchStatus: 9 bytes long; a LIN frame carries 1 to 8"),
    ("length 0", "LampCommand: 0x20, ELC, 2", "LampCommand: 0x20, ELC, 0", "0 {",
     r"frame LampCommand: 0 bytes long; a LIN frame carries 1 to 8"),
    ("signal outside", "    ScsSupply, 8;", "    ScsSupply, 12;", "ScsSupply, 12",
     r"frame SwitchStatus: signal ScsSupply \(bits 12\.\.19\) lies outside the frame's 2 bytes "
     r"\(bits 0\.\.15\)"),
    ("overlap", "    LightSwitch, 2;", "    LightSwitch, 1;", "LightSwitch, 1",
     r"frame SwitchStatus: signal LightSwitch \(bits 1\.\.2\) overlaps TurnStalk"),
    ("unknown signal", "    ScsSupply, 8;", "    ScsSuply, 8;", "ScsSuply",
     r"frame SwitchStatus: no signal ScsSuply in Signals"),
    ("one ID twice", "LampCommand: 0x20, ELC, 2", "LampCommand: 0x10, ELC, 2", "0x10, ELC",
     r"frame LampCommand has ID 0x10, like SwitchStatus, line \d+: IDs must differ"),
    ("one name twice", "  LampCommand: 0x20, ELC, 2 {", "  SwitchStatus: 0x20, ELC, 2 {",
     "SwitchStatus: 0x20", r"a second frame SwitchStatus \(the first: line \d+\)"),
    ("schedule names an unknown frame", "    LampCommand delay 10 ms;",
     "    LampComand delay 10 ms;", "LampComand",
     r"schedule table NormalTable, entry 2: no frame named LampComand; did you mean LampCommand\?"),
    ("frame publisher", "LampCommand: 0x20, ELC, 2", "LampCommand: 0x20, BCM, 2", "BCM",
     r"frame LampCommand: publisher BCM is neither the master \(ELC\) nor a slave "
     r"\(SCS, LAMP_L, LAMP_R\)"),
    ("signal publisher", "  ScsSupply: 8, 0, SCS, ELC;", "  ScsSupply: 8, 0, BCM, ELC;", "BCM",
     r"signal ScsSupply: publisher BCM is neither the master"),
    ("signal subscriber", "  ScsSupply: 8, 0, SCS, ELC;", "  ScsSupply: 8, 0, SCS, BCM;", "BCM",
     r"signal ScsSupply: subscriber BCM is neither the master"),
    ("publisher of a frame's signal", "  ScsSupply: 8, 0, SCS, ELC;",
     "  ScsSupply: 8, 0, LAMP_L, ELC;", "ScsSupply, 8",
     r"frame SwitchStatus is published by SCS, its signal ScsSupply by LAMP_L"),
    ("initial value", "  TurnStalk: 2, 0, SCS, ELC;", "  TurnStalk: 2, 4, SCS, ELC;", "4, SCS",
     r"signal TurnStalk: initial value 4 does not fit its 2 bits \(0\.\.3\)"),
    ("signal width", "  TurnStalk: 2, 0, SCS, ELC;", "  TurnStalk: 17, 0, SCS, ELC;", "TurnStalk",
     r"signal TurnStalk: 17 bits wide; a scalar signal is 1 to 16 bits"),
    ("no collision table", "LampFaultEvent: CollisionTable, 0x23", "LampFaultEvent: 0x23",
     "LampFaultEvent: 0x23", r"event-triggered frame LampFaultEvent: no collision-resolving "
     r"schedule table; ldfparser needs one"),
    ("unknown collision table", "LampFaultEvent: CollisionTable,", "LampFaultEvent: Collision,",
     "Collision,", r"event-triggered frame LampFaultEvent: no schedule table Collision \(tables: "
     r"NormalTable, CollisionTable, DiagTable\)"),
    ("event-triggered over a master frame", "0x23, LampLeftStatus, LampRightStatus;",
     "0x23, LampLeftStatus, LampCommand;", "LampCommand;",
     r"event-triggered frame LampFaultEvent: LampCommand is published by the master"),
    ("event-triggered: the PID byte", "    LampLeftFault, 8;", "    LampLeftFault, 0;",
     "LampLeftStatus, LampRight", r"event-triggered frame LampFaultEvent: LampLeftStatus carries "
     r"LampLeftFault in its first byte, which carries the protected ID"),
    ("node attributes", "    product_id = 0x1E1C, 0x0001, 0;\n", "", "SCS {",
     r"node SCS: no product_id \(LIN 2\.1 and later require one\)"),
    ("response error", "response_error = ScsResponseError;", "response_error = ScsError;",
     "ScsError", r"node SCS: no signal ScsError"),
    ("encoding", "  TurnStalkEncoding: TurnStalk;", "  TurnStalkEnc: TurnStalk;", "TurnStalkEnc:",
     r"Signal_representation: no encoding type TurnStalkEnc"),
    ("a section twice", "Signal_representation {",
     "Signal_representation {\n  TurnStalkEncoding: TurnStalk;\n}\nSignal_representation {",
     "Signal_representation {\n  TurnStalkEncoding: TurnStalk;\n  LightSwitch",
     r"a second Signal_representation section \(the first: line \d+\)"),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "at", "reason"), [case[1:] for case in BROKEN],
                         ids=[case[0] for case in BROKEN])  # fmt: skip
def test_a_malformed_ldf_names_the_file_the_line_and_the_reason(
    tmp_path: Path, old: str, new: str, at: str, reason: str
) -> None:
    assert TEXT.count(old) == 1
    text = TEXT.replace(old, new)
    offset = len(text.rstrip()) if at == END else text.index(at)
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    path = tmp_path / "broken.ldf"
    path.write_text(text)
    with pytest.raises(LdfError) as caught:
        Ldf.load(path)
    where = f"{path}:{line}:{column}: "
    assert str(caught.value).startswith(where), str(caught.value)
    assert re.match(reason, str(caught.value)[len(where) :]), str(caught.value)


def test_a_missing_ldf_says_what_was_expected_where(tmp_path: Path) -> None:
    missing = tmp_path / "missing.ldf"
    with pytest.raises(LdfError, match=rf"^LDF not found: expected {re.escape(str(missing))}$"):
        Ldf.load(missing)


def test_what_the_checks_miss_is_ldfparsers_reason_at_the_definition_it_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(path: str, **_: object) -> None:
        raise ValueError("Frame LampLeftStatus is not liked")

    monkeypatch.setattr(ldfparser, "parse_ldf", refuse)
    line = TEXT[: TEXT.index("LampLeftStatus: 0x21")].count("\n") + 1
    with pytest.raises(LdfError, match=rf"exterior_light\.ldf:{line}:3: ldfparser cannot load "
                       r"it: Frame LampLeftStatus is not liked$"):  # fmt: skip
        Ldf.load()


def test_a_latin_1_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "latin1.ldf"
    path.write_bytes(TEXT.replace('"degC"', '"°C"').encode("latin-1"))
    assert str(Ldf.load(path).signals["LampLeftTemp"].physical[0]) == "-40..215 °C"


LIN_13 = """
LIN_description_file;
LIN_protocol_version = "1.3";
LIN_language_version = "1.3";
LIN_speed = 9.6 kbps;
Nodes { Master: M, 10 ms, 0.5 ms; Slaves: S; }
Signals { Level: 8, 7, S, M; Mode: 4, 0, M, S; }
Frames {
  Status: 0x30, S { Level, 0; }
  Command: 0x05, M, 1 { Mode, 4; }
}
Schedule_tables { Run { Command delay 15 ms; Status delay 15 ms; MasterReq delay 20 ms; } }
"""


def test_a_lin_1_3_cluster_uses_the_classic_checksum_and_default_lengths(tmp_path: Path) -> None:
    path = tmp_path / "lin13.ldf"
    path.write_text(LIN_13)
    cluster = Ldf.load(path)
    assert cluster.bitrate == 9600 and cluster.protocol_version == "1.3"
    assert not any(f.enhanced for f in cluster.frames.values())
    assert cluster.frames["Status"].length == 8  # IDs 0x30..0x3F: 8 bytes in LIN 1.3
    assert cluster.initial("Status") == bytes([7, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
    assert cluster.encode("Command", Mode=0xA) == bytes([0xAF])
    assert cluster.schedules["Run"][2] == Slot("MasterReq", 0x3C, 20.0)


def test_a_diagnostic_schedule_without_diagnostic_frames_gets_them(tmp_path: Path) -> None:
    path = tmp_path / "nodiag.ldf"
    path.write_text(LIN_13)
    cluster = Ldf.load(path)
    assert "SlaveResp" not in cluster.frames  # no schedule uses it
    frame = cluster.frames["MasterReq"]
    assert frame == LdfFrame("MasterReq", 0x3C, 8, "M", ("S",), "diagnostic", (), (), False,
                             ("M",), None)  # fmt: skip


def test_speeds_round_rather_than_truncate(tmp_path: Path) -> None:
    path = tmp_path / "speed.ldf"
    path.write_text(LIN_13.replace("9.6 kbps", "4.35 kbps"))  # 4.35 * 1000 = 4349.999...
    assert Ldf.load(path).bitrate == 4350


def test_a_schedule_with_a_configuration_command_is_left_out_with_its_reason(
    tmp_path: Path,
) -> None:
    slot = "    SlaveResp delay 10 ms;"
    text = TEXT.replace(slot, f"{slot}\n    AssignNAD {{ LAMP_L }} delay 20 ms;")
    path = tmp_path / "configures.ldf"
    path.write_text(text)
    ldf = Ldf.load(path)  # the rest of the file is usable
    assert "DiagTable" not in ldf.schedules and "NormalTable" in ldf.schedules
    line = text[: text.index("AssignNAD")].count("\n") + 1
    reason = ldf.unsupported_schedules["DiagTable"]
    assert re.match(rf"{re.escape(str(path))}:{line}:5: schedule table DiagTable, entry 3: "
                    r"AssignNAD is not supported", reason)  # fmt: skip


def test_logical_values_that_name_special_values_leave_the_others_numbers(tmp_path: Path) -> None:
    special = '  CountEncoding {\n    logical_value, 255, "Invalid";\n  }\n  LampFaultEncoding {'
    text = TEXT.replace("  LampFaultEncoding {", special).replace(
        "TemperatureEncoding: LampLeftTemp, LampRightTemp;",
        "TemperatureEncoding: LampRightTemp;\n  CountEncoding: LampLeftTemp;")
    path = tmp_path / "special.ldf"
    path.write_text(text)
    ldf = Ldf.load(path)
    data = ldf.encode("LampLeftStatus", LampLeftTemp=100)
    assert ldf.decode("LampLeftStatus", data)["LampLeftTemp"] == 100
    invalid = ldf.encode("LampLeftStatus", LampLeftTemp="Invalid")
    assert ldf.decode("LampLeftStatus", invalid)["LampLeftTemp"] == "Invalid"


def test_update_keeps_the_raw_values_of_signals_not_named(tmp_path: Path) -> None:
    # two logical values with one name: a round trip by names would turn 3 into 2
    text = TEXT.replace('logical_value, 3, "Auto";', 'logical_value, 3, "LowBeam";')
    path = tmp_path / "twice.ldf"
    path.write_text(text)
    ldf = Ldf.load(path)
    data = ldf.encode("SwitchStatus", LightSwitch=3)
    updated = ldf.update("SwitchStatus", data, ScsSupply=12.0)
    assert ldf.decode("SwitchStatus", updated, raw=True)["LightSwitch"] == 3
    assert ldf.decode("SwitchStatus", updated)["ScsSupply"] == 12.0


def test_frames_with_a_lin_1_x_slave_use_the_classic_checksum(tmp_path: Path) -> None:
    # LIN 2.x talks to a LIN 1.x slave with the classic checksum, frame by frame
    text = TEXT.replace('SCS {\n    LIN_protocol = "2.1";', 'SCS {\n    LIN_protocol = "1.3";')
    assert text != TEXT
    path = tmp_path / "mixed.ldf"
    path.write_text(text)
    ldf = Ldf.load(path)
    assert not ldf.frame("SwitchStatus").enhanced
    assert ldf.frame("LampCommand").enhanced and ldf.frame("LampLeftStatus").enhanced


def test_a_frame_with_no_signals_is_named_as_the_cause(tmp_path: Path) -> None:
    text = TEXT.replace("Event_triggered_frames {", "Frames {\n  Empty: 0x30, ELC, 1 { }\n}\n\n"
                        "Event_triggered_frames {", 1)  # fmt: skip
    text = text.replace("}\n\nFrames {\n  Empty", "  Empty", 1)  # inside the Frames section
    path = tmp_path / "empty.ldf"
    path.write_text(text)
    line = text[: text.index("Empty")].count("\n") + 1
    with pytest.raises(LdfError, match=rf"empty\.ldf:{line}:\d+: an empty block \(a frame with "
                                       r"no signals\?\): ldfparser"):  # fmt: skip
        Ldf.load(path)
