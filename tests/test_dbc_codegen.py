"""The light controller packs its signals with C code generated from the DBC by cantools at
build time: the ELC targets compile it, a DBC change rebuilds them, and the generated code
encodes like cantools itself (boundary values of the signed, scaled, big-endian signals)."""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cantools
import pytest

from harness import dbc_codegen
from harness.build import DBC_DIR, FIRMWARE_DIR, GENERATED, build
from harness.errors import BuildError
from harness.loader import load_elf

DBC = DBC_DIR / "exterior_light.dbc"


@pytest.fixture
def sources(tmp_path: Path) -> tuple[Path, Path]:
    src, dbc_dir = tmp_path / "fw", tmp_path / "dbc"
    shutil.copytree(FIRMWARE_DIR, src)
    shutil.copytree(DBC_DIR, dbc_dir)
    return src, dbc_dir


def test_the_elc_targets_link_the_generated_pack_functions(
    sources: tuple[Path, Path], tmp_path: Path
) -> None:
    src, dbc_dir = sources
    out = tmp_path / "out"
    elfs = build(["elc", "elc_1m"], src=src, dbc_dir=dbc_dir, out=out)
    assert (out / GENERATED / "exterior_light.c").is_file()
    assert not list(src.rglob("exterior_light.*")), "generated code belongs in the build dir"
    for elf in elfs.values():
        image = load_elf(elf)  # --gc-sections keeps only what the firmware calls
        for used in ("light_status_pack", "light_diag_pack", "vehicle_state_unpack",
                     "light_command_unpack", "elc_network_management_pack"):  # fmt: skip
            assert image.symbol(f"exterior_light_{used}").kind == "function"


def test_a_dbc_change_rebuilds_the_dbc_targets_only(
    sources: tuple[Path, Path], tmp_path: Path
) -> None:
    src, dbc_dir = sources
    out = tmp_path / "out"
    names = ["app", "elc", "elc_1m"]
    first = build(names, src=src, dbc_dir=dbc_dir, out=out)
    stamps = {n: p.stat().st_mtime_ns for n, p in first.items()}
    build(names, src=src, dbc_dir=dbc_dir, out=out)
    assert {n: p.stat().st_mtime_ns for n, p in first.items()} == stamps  # nothing rebuilt
    dbc = dbc_dir / "exterior_light.dbc"
    dbc.write_text(dbc.read_text().replace('BA_ "GenMsgCycleTime" BO_ 288 100;',
                                           'BA_ "GenMsgCycleTime" BO_ 288 200;'))  # fmt: skip
    build(names, src=src, dbc_dir=dbc_dir, out=out)
    assert first["elc"].stat().st_mtime_ns != stamps["elc"]
    assert first["elc_1m"].stat().st_mtime_ns != stamps["elc_1m"]
    assert first["app"].stat().st_mtime_ns == stamps["app"]
    header = (out / GENERATED / "exterior_light.h").read_text()
    assert "#define EXTERIOR_LIGHT_LIGHT_COMMAND_CYCLE_TIME_MS (200u)" in header


def test_a_missing_dbc_names_the_target_and_the_file(
    sources: tuple[Path, Path], tmp_path: Path
) -> None:
    src, dbc_dir = sources
    (dbc_dir / "exterior_light.dbc").unlink()
    expected = re.escape(str(dbc_dir / "exterior_light.dbc"))
    with pytest.raises(BuildError, match=rf"target 'elc': DBC not found: expected {expected}$"):
        build(["elc"], src=src, dbc_dir=dbc_dir, out=tmp_path / "out")


def test_an_invalid_dbc_is_a_build_error(sources: tuple[Path, Path], tmp_path: Path) -> None:
    src, dbc_dir = sources
    dbc = dbc_dir / "exterior_light.dbc"  # LongAccel on Speed's bits: cantools refuses it
    dbc.write_text(dbc.read_text().replace("LongAccel : 31|16@0-", "LongAccel : 7|16@0-"))
    with pytest.raises(BuildError, match=r"cannot generate C code from .*exterior_light\.dbc: "
                       r".*overlap"):  # fmt: skip
        build(["elc"], src=src, dbc_dir=dbc_dir, out=tmp_path / "out")


WRAPPER = r"""
#include "exterior_light.h"

int pack_vehicle_state(uint8_t *dst, uint16_t speed, uint8_t brake, uint8_t turn,
                       int16_t accel, uint8_t counter, uint8_t crc) {
    struct exterior_light_vehicle_state_t m = {
        .speed = speed, .brake_pedal = brake, .turn_request = turn, .long_accel = accel,
        .vehicle_state_counter = counter, .vehicle_state_crc = crc};
    return exterior_light_vehicle_state_pack(dst, &m, 8);
}

int unpack_long_accel(const uint8_t *src, int16_t *accel) {
    struct exterior_light_vehicle_state_t m;
    int rc = exterior_light_vehicle_state_unpack(&m, src, 8);
    *accel = m.long_accel;
    return rc;
}

int pack_light_command(uint8_t *dst, uint8_t mode, uint8_t fog, uint8_t ambient, int8_t temp) {
    struct exterior_light_light_command_t m = {
        .headlight_mode = mode, .fog_light = fog, .ambient_level = ambient, .temperature = temp};
    return exterior_light_light_command_pack(dst, &m, 8);
}

int unpack_temperature(const uint8_t *src, int8_t *temp) {
    struct exterior_light_light_command_t m;
    int rc = exterior_light_light_command_unpack(&m, src, 8);
    *temp = m.temperature;
    return rc;
}
"""


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    """The generated code, built for the host with the same zig toolchain and warnings."""
    work = tmp_path_factory.mktemp("codegen")
    _, source = dbc_codegen.generate(DBC, work)
    wrapper = work / "wrapper.c"
    wrapper.write_text(WRAPPER)
    lib = work / "libgenerated.so"
    cmd = [sys.executable, "-m", "ziglang", "cc", "-shared", "-fPIC", "-O2", "-std=c11",
           "-Wall", "-Wextra", "-Werror", f"-I{work}", "-o", str(lib), str(source),
           str(wrapper)]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return ctypes.CDLL(str(lib))


@pytest.mark.parametrize("accel", [-32768, -32767, -256, -1, 0, 1, 255, 32766, 32767])
def test_long_accel_big_endian_signed_scaled_encodes_like_cantools(
    generated: ctypes.CDLL, accel: int
) -> None:
    db = cantools.database.load_file(DBC)
    raw = {"Speed": 65535, "BrakePedal": 1, "TurnRequest": 3, "LongAccel": accel,
           "VehicleState_Counter": 14, "VehicleState_CRC": 255}  # fmt: skip
    buf = (ctypes.c_uint8 * 8)()
    args = (ctypes.c_uint16(65535), ctypes.c_uint8(1), ctypes.c_uint8(3),
            ctypes.c_int16(accel), ctypes.c_uint8(14), ctypes.c_uint8(255))  # fmt: skip
    assert generated.pack_vehicle_state(buf, *args) == 8
    assert bytes(buf) == db.encode_message("VehicleState", raw, scaling=False)
    decoded = db.decode_message("VehicleState", bytes(buf))
    assert decoded["LongAccel"] == pytest.approx(accel * 0.001)
    back = ctypes.c_int16()
    assert generated.unpack_long_accel(buf, ctypes.byref(back)) == 0
    assert back.value == accel


@pytest.mark.parametrize("temp", [-128, -41, -40, -1, 0, 1, 126, 127])
def test_temperature_signed_with_offset_encodes_like_cantools(
    generated: ctypes.CDLL, temp: int
) -> None:
    db = cantools.database.load_file(DBC)
    raw = {"HeadlightMode": 3, "FogLight": 1, "AmbientLevel": 200, "Temperature": temp}
    buf = (ctypes.c_uint8 * 8)()
    args = (ctypes.c_uint8(3), ctypes.c_uint8(1), ctypes.c_uint8(200), ctypes.c_int8(temp))
    assert generated.pack_light_command(buf, *args) == 8
    assert bytes(buf) == db.encode_message("LightCommand", raw, scaling=False)
    assert db.decode_message("LightCommand", bytes(buf))["Temperature"] == temp - 40
    back = ctypes.c_int8()
    assert generated.unpack_temperature(buf, ctypes.byref(back)) == 0
    assert back.value == temp
