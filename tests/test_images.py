"""Firmware in the formats flashing tools take: Intel HEX, S-record and raw binaries beside
ELF, and several images in one flash (a bootloader and its applications). The HEX and
S-record files are written by bincopy from the ELF, as a build would; the machine must run
them exactly as it runs the ELF."""

from __future__ import annotations

from pathlib import Path

import bincopy
import pytest

from harness import Machine
from harness.errors import FirmwareLoadError
from harness.loader import load_elf, load_image


def converted(elf: Path, tmp_path: Path, suffix: str) -> Path:
    binary = bincopy.BinFile()
    for seg in load_elf(elf).segments:
        if seg.address < 0x2000_0000:  # what goes into flash (.data's initial values too)
            binary.add_binary(seg.data, address=seg.address)
    out = tmp_path / f"{elf.stem}{suffix}"
    if suffix == ".hex":
        out.write_text(binary.as_ihex())
    elif suffix == ".s19":
        out.write_text(binary.as_srec())
    else:
        out.write_bytes(binary.as_binary())
    return out


def gpio_trace(m: Machine) -> list[tuple[int, int, int]]:
    m.run_for(ms=3)
    return [(e.cycle, e.pin, e.level) for e in m.gpio("GPIOA").events]


@pytest.mark.parametrize("suffix", [".hex", ".s19"])
def test_hex_and_srecord_run_exactly_as_the_elf(firmware, tmp_path: Path, suffix: str) -> None:
    image = converted(firmware["app"], tmp_path, suffix)
    assert gpio_trace(Machine(image)) == gpio_trace(Machine(firmware["app"]))


def test_a_raw_binary_is_placed_at_its_address(firmware, tmp_path: Path) -> None:
    elf = load_elf(firmware["app"])
    raw = converted(firmware["app"], tmp_path, ".bin")
    base = min(seg.address for seg in elf.segments)
    assert gpio_trace(Machine(load_image(raw, base))) == gpio_trace(Machine(firmware["app"]))
    with pytest.raises(FirmwareLoadError, match=r"app\.bin: a raw binary needs the address"):
        load_image(raw)


def test_images_beside_the_firmware_land_in_flash_and_may_not_overlap(firmware, tmp_path):
    payload = tmp_path / "bank_b.bin"
    payload.write_bytes(bytes(range(256)) * 4)
    m = Machine(firmware["app"], images=[(payload, 0x0010_0000)])
    assert m.read_memory(0x0010_0000, 1024) == payload.read_bytes()
    assert gpio_trace(m) == gpio_trace(Machine(firmware["app"]))  # the firmware still boots
    with pytest.raises(FirmwareLoadError, match=r"canecho\.elf \(0x.*\) overlaps .*app\.elf|"
                                                r"app\.elf \(0x.*\) overlaps .*canecho\.elf"):
        Machine(firmware["app"], images=[firmware["canecho"]])


def test_a_broken_hex_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.hex"
    bad.write_text(":10000000FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF01\n")  # checksum 01, not 00
    with pytest.raises(FirmwareLoadError, match=r"bad\.hex: not a valid HEX file"):
        load_image(bad)
