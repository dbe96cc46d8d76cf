"""The C tables generated from the LDF: they compile for the firmware's target with its
warnings, and every frame, slot and signal in them is what the LDF says (the header's
#defines parsed here; the tables read from a host build of the generated source)."""

from __future__ import annotations

import ctypes
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness import ldf_codegen
from harness.frames.lin import protected_id
from harness.ldf import PROJECT_LDF, Ldf, LdfError

LDF = Ldf.load()
WARNINGS = ("-std=c11", "-Wall", "-Wextra", "-Werror")
TARGET = ("-target", "thumb-freestanding-eabi", "-mcpu=cortex_m4", "-ffreestanding", "-O2")

# A firmware-side user of the tables: what the LIN driver will do with them.
USER = r"""
#include "exterior_light_lin.h"

_Static_assert(sizeof(lin_frame_t) == 6, "a frame is six bytes");
_Static_assert(LIN_SIGNAL_TURN_STALK_FRAME == LIN_FRAME_SWITCH_STATUS, "TurnStalk's frame");
_Static_assert(LIN_EVENT_LAMP_FAULT_EVENT_RESOLVES == LIN_SCHEDULE_COLLISION_TABLE, "resolver");
_Static_assert(LIN_TURN_STALK_RIGHT == 2u && LIN_LIGHT_SWITCH_LOW_BEAM == 2u, "logical values");

uint32_t lin_cycle_us(uint8_t table) {
    uint32_t total = 0;
    for (uint16_t i = 0; i < lin_schedules[table].length; i++) {
        total += lin_schedules[table].slots[i].delay_us;
    }
    return total;
}

uint8_t lin_pid(uint8_t frame) { return lin_frames[frame].pid; }

static const uint8_t lamp_brightness_init[] = {LIN_SIGNAL_LAMP_BRIGHTNESS_INIT};
uint8_t lin_brightness_init(void) { return lamp_brightness_init[0]; }
"""


class Frame(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint8)
                for name in ("id", "pid", "length", "direction", "enhanced", "kind")]  # fmt: skip


class SlotT(ctypes.Structure):
    _fields_ = [("frame", ctypes.c_uint8), ("delay_us", ctypes.c_uint32)]


class Schedule(ctypes.Structure):
    _fields_ = [("slots", ctypes.POINTER(SlotT)), ("length", ctypes.c_uint16)]


def zig_cc(*args: str | Path) -> None:
    command = [sys.executable, "-m", "ziglang", "cc", *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def defines(header: Path) -> dict[str, str]:
    found = dict(re.findall(r"^#define (\w+) (.+?)(?: /\*.*\*/)?$", header.read_text(), re.M))
    return found


def snake(name: str) -> str:
    """SwitchStatus -> SWITCH_STATUS, as the generator names it."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


def number(text: str, table: dict[str, str]) -> int:
    """A #define's value, following macro names."""
    while text in table:
        text = table[text]
    match = re.fullmatch(r"(0x[0-9A-F]+|\d+)u", text)
    assert match, text
    return int(match.group(1), 0)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return ldf_codegen.generate(PROJECT_LDF, tmp_path_factory.mktemp("lin"))


def build_host(header: Path, source: Path) -> ctypes.CDLL:
    user = header.parent / "user.c"
    user.write_text(USER)
    lib = header.parent / "liblin.so"
    zig_cc("-shared", "-fPIC", "-O2", *WARNINGS, f"-I{header.parent}", "-o", lib, source, user)
    return ctypes.CDLL(str(lib))


def test_the_generated_files_compile_for_the_firmware_target(generated: tuple[Path, Path]) -> None:
    header, source = generated
    assert (header.name, source.name) == ("exterior_light_lin.h", "exterior_light_lin.c")
    user = header.parent / "target_user.c"
    user.write_text(USER)
    for c_file in (source, user):
        obj = c_file.with_suffix(".o")
        zig_cc(*TARGET, *WARNINGS, "-c", f"-I{header.parent}", "-o", obj, c_file)
        assert obj.stat().st_size > 0


def test_the_tables_are_the_ldfs(generated: tuple[Path, Path]) -> None:
    header, source = generated
    table = defines(header)
    lib = build_host(header, source)
    assert number("LIN_BITRATE", table) == LDF.bitrate == 19200
    assert number("LIN_TIME_BASE_US", table) == 5000
    frames = (Frame * number("LIN_FRAME_COUNT", table)).in_dll(lib, "lin_frames")
    assert len(frames) == len(LDF.frames)
    kinds = {"unconditional": 0, "event_triggered": 1, "diagnostic": 2}
    index: dict[str, int] = {}
    for frame in LDF.frames.values():
        index[frame.name] = number(f"LIN_FRAME_{snake(frame.name)}", table)
        row = frames[index[frame.name]]
        direction = 0 if "ELC" in frame.publishers else 1 if "ELC" in frame.subscribers else 2
        assert (row.id, row.pid, row.length, row.direction, row.enhanced, row.kind) == (
            frame.frame_id, protected_id(frame.frame_id), frame.length, direction,
            int(frame.enhanced), kinds[frame.kind]), frame.name  # fmt: skip
    assert sorted(index.values()) == list(range(len(LDF.frames)))
    schedules = (Schedule * number("LIN_SCHEDULE_COUNT", table)).in_dll(lib, "lin_schedules")
    assert len(schedules) == len(LDF.schedules) == 3
    for name, slots in LDF.schedules.items():
        macro = f"LIN_SCHEDULE_{snake(name)}"
        schedule = schedules[number(macro, table)]
        assert schedule.length == number(f"{macro}_LENGTH", table) == len(slots)
        got = [(schedule.slots[i].frame, schedule.slots[i].delay_us) for i in range(len(slots))]
        assert got == [(index[s.frame], round(s.delay_ms * 1000)) for s in slots], name
    lib.lin_cycle_us.restype = ctypes.c_uint32
    assert lib.lin_cycle_us(number("LIN_SCHEDULE_NORMAL_TABLE", table)) == 30_000
    resolves = table["LIN_EVENT_LAMP_FAULT_EVENT_RESOLVES"]
    assert number(resolves, table) == number("LIN_SCHEDULE_COLLISION_TABLE", table)


def test_every_signal_is_the_ldfs(generated: tuple[Path, Path]) -> None:
    header, _ = generated
    table = defines(header)
    signals = {m.group(1) for name in table if (m := re.fullmatch(r"LIN_SIGNAL_(\w+)_WIDTH", name))}
    assert len(signals) == len(LDF.signals) == 32
    for signal in LDF.signals.values():
        plain = snake(signal.name)
        macro = f"LIN_SIGNAL_{plain}"
        ((frame, bit),) = signal.placements
        assert table[f"{macro}_FRAME"] == f"LIN_FRAME_{snake(frame)}"
        assert number(f"{macro}_BIT", table) == bit
        assert number(f"{macro}_WIDTH", table) == signal.width
        assert number(f"{macro}_INIT", table) == signal.init
        logical = {name.removeprefix(f"LIN_{plain}_"): number(name, table) for name in table
                   if name.startswith(f"LIN_{plain}_")}  # fmt: skip
        expected = {snake(text or ""): raw for raw, text in signal.logical}
        assert logical == expected, signal.name
    assert number("LIN_LIGHT_SWITCH_LOW_BEAM", table) == 2
    assert number("LIN_LAMP_RIGHT_FAULT_FAULT", table) == 1


def test_the_directions_are_seen_from_the_node_asked_for(tmp_path: Path) -> None:
    header, source = ldf_codegen.generate(PROJECT_LDF, tmp_path, node="LAMP_L")
    table = defines(header)
    frames = (Frame * len(LDF.frames)).in_dll(build_host(header, source), "lin_frames")
    seen = {name: frames[number(f"LIN_FRAME_{snake(name)}", table)].direction
            for name in LDF.frames}  # fmt: skip
    publish, subscribe, ignore = 0, 1, 2
    assert seen == {"SwitchStatus": ignore, "LampCommand": subscribe, "LampLeftStatus": publish,
                    "LampRightStatus": ignore, "LampFaultEvent": publish,
                    "MasterReq": subscribe, "SlaveResp": publish}  # fmt: skip


def test_unchanged_files_are_not_rewritten_and_the_fingerprint_follows_the_inputs(
    tmp_path: Path,
) -> None:
    ldf = tmp_path / "exterior_light.ldf"
    ldf.write_text(PROJECT_LDF.read_text())
    header, source = ldf_codegen.generate(ldf, tmp_path / "out")
    stamps = (header.stat().st_mtime_ns, source.stat().st_mtime_ns)
    assert ldf_codegen.generate(ldf, tmp_path / "out") == (header, source)
    assert (header.stat().st_mtime_ns, source.stat().st_mtime_ns) == stamps
    before = ldf_codegen.fingerprint(ldf)
    assert ldf_codegen.fingerprint(ldf, "LAMP_L") != before
    slower = ldf.read_text().replace("LampFaultEvent delay 10 ms", "LampFaultEvent delay 20 ms")
    ldf.write_text(slower)
    assert ldf_codegen.fingerprint(ldf) != before
    ldf_codegen.generate(ldf, tmp_path / "out")
    assert header.stat().st_mtime_ns == stamps[0]  # the header does not hold the delays
    assert "{LIN_FRAME_LAMP_FAULT_EVENT, 20000u}," in source.read_text()


SMALL = """
LIN_description_file;
LIN_protocol_version = "2.1";
LIN_language_version = "2.1";
LIN_speed = 19.2 kbps;
Nodes { Master: M, 5 ms, 0.1 ms; Slaves: S; }
Signals { Mode: 2, 0, M, S; Level: 8, 0, S, M; }
Frames {
  Command: 0x01, M, 1 { Mode, 0; }
  Status: 0x02, S, 2 { Level, 8; }
}
Node_attributes { S { LIN_protocol = "2.1"; configured_NAD = 0x01; product_id = 1, 2; } }
Schedule_tables { Run { Command delay 10 ms; Status delay 10 ms; } }
Signal_encoding_types { Modes { logical_value, 0, "Off"; logical_value, 1, "Low Beam"; } }
Signal_representation { Modes: Mode; }
"""


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("", "", r"^OK$"),
        ('"Low Beam"', '"%"', r"logical value 1 of Mode '%' makes no C identifier"),
        ('"Low Beam"', '"Hot °C"', r"logical value 1 of Mode 'Hot °C' makes no C identifier"),
        ('"Low Beam"', '"off"', r"logical value 1 of Mode 'off' and logical value 0 of Mode "
                                r"'Off' both become the C name LIN_MODE_OFF"),
        ("Status", "Command_", r"frame 'Command_' and frame 'Command' both become "
                                           r"the C name LIN_FRAME_COMMAND"),
        ("Status", "Count", r"frame 'Count' and the header's own both become the C "
                                        r"name LIN_FRAME_COUNT"),
        ("Run {", "Count {", r"schedule table 'Count' and the header's own both become the C name "
                             r"LIN_SCHEDULE_COUNT"),
        ("Status: 0x02, S, 2 { Level, 8; }", "Status: 0x02, S, 2 { Level, 8; }\n"
         "  Status2: 0x03, S, 1 { Level, 0; }", r"signal Level is carried by several frames "
         r"\(Status, Status2\); the C tables give a signal one"),
    ],
)  # fmt: skip
def test_names_that_make_no_c_name_or_collide_are_refused(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    ldf = tmp_path / "small.ldf"
    ldf.write_text(SMALL.replace(old, new) if old else SMALL)
    if message == r"^OK$":
        header, _ = ldf_codegen.generate(ldf, tmp_path)
        assert "#define LIN_MODE_LOW_BEAM 1u" in header.read_text()
        return
    with pytest.raises(LdfError, match=rf"^{re.escape(str(ldf))}: {message}"):
        ldf_codegen.generate(ldf, tmp_path)


def test_an_unknown_node_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LdfError, match=r"no node named 'BCM' to generate the C tables for "
                       r"\(nodes: ELC, SCS, LAMP_L, LAMP_R\)"):  # fmt: skip
        ldf_codegen.generate(PROJECT_LDF, tmp_path, node="BCM")
