"""ELF loading and the errors for bad input."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import FirmwareFault, FirmwareLoadError, Machine, load_elf


def test_loads_segments_symbols_and_vector_table(app_elf: Path) -> None:
    image = load_elf(app_elf)
    assert image.vector_table == 0x0001_0000  # bank A, where the linker script puts it
    assert image.symbol("main").kind == "function"
    assert image.symbol("ms_ticks").kind == "object"
    assert image.symbol("ms_ticks").size == 4
    main = image.symbol("main")
    assert image.function_at(main.address + 2) == "main"
    assert image.function_at(0x2000_0000) is None
    flash = [s for s in image.segments if s.address < 0x2000_0000]
    assert flash and all(s.data for s in flash)


def test_data_initial_values_come_from_flash(app_elf: Path) -> None:
    # .data's load address is in flash; the startup code copies it and zeroes .bss.
    m = Machine(app_elf)
    symbol = m.image.symbol("heartbeat_period_ms")
    assert m.read_memory(symbol.address, 4) == bytes(4)  # SRAM before the startup code ran
    m.run_for(ms=1)
    assert m.read_symbol("heartbeat_period_ms") == 500
    assert m.read_symbol("ms_ticks") == 0  # .bss, zeroed; the first tick is at 1 ms + boot


def test_unknown_symbol_names_the_file(app_elf: Path) -> None:
    with pytest.raises(KeyError, match=r"app\.elf: no symbol named 'nope'"):
        load_elf(app_elf).symbol("nope")


def test_not_an_elf(tmp_path: Path) -> None:
    bad = tmp_path / "firmware.bin"
    bad.write_bytes(b"\x00\x00\x02\x20" * 64)
    with pytest.raises(FirmwareLoadError, match=r"firmware\.bin: not an ELF file"):
        load_elf(bad)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FirmwareLoadError, match=r"missing\.elf: cannot read firmware"):
        load_elf(tmp_path / "missing.elf")


def _patched(src: Path, dst: Path, offset: int, fmt: str, value: int) -> Path:
    data = bytearray(src.read_bytes())
    struct.pack_into(fmt, data, offset, value)
    dst.write_bytes(bytes(data))
    return dst


def test_elf_for_another_architecture(app_elf: Path, tmp_path: Path) -> None:
    riscv = _patched(app_elf, tmp_path / "riscv.elf", 18, "<H", 243)  # e_machine = EM_RISCV
    with pytest.raises(
        FirmwareLoadError, match=r"riscv\.elf: ELF machine is EM_RISCV; expected EM_ARM"
    ):
        load_elf(riscv)


def test_64_bit_elf(app_elf: Path, tmp_path: Path) -> None:
    elf64 = _patched(app_elf, tmp_path / "wide.elf", 4, "<B", 2)  # EI_CLASS = ELFCLASS64
    with pytest.raises(FirmwareLoadError, match=r"wide\.elf: .*expected 32-bit little-endian ARM"):
        load_elf(elf64)


def test_truncated_elf(app_elf: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.elf"
    cut.write_bytes(app_elf.read_bytes()[:200])
    with pytest.raises(FirmwareLoadError, match=r"cut\.elf: "):
        load_elf(cut)


def test_segment_outside_the_memory_map(app_elf: Path, tmp_path: Path) -> None:
    with app_elf.open("rb") as f:
        elf = ELFFile(f)
        phoff, phentsize = elf["e_phoff"], elf["e_phentsize"]
        index = next(i for i, s in enumerate(elf.iter_segments()) if s["p_type"] == "PT_LOAD")
    # p_paddr is the fourth word of an ELF32 program header.
    paddr = phoff + index * phentsize + 12
    moved = _patched(app_elf, tmp_path / "moved.elf", paddr, "<I", 0x3000_0000)
    outside = r"moved\.elf: segment at 0x30000000 .* outside the memory map"
    with pytest.raises(FirmwareLoadError, match=outside):
        Machine(moved)


def test_vector_table_with_reset_vector_outside_memory(app_elf: Path, tmp_path: Path) -> None:
    image = load_elf(app_elf)
    seg = image.segments[0]
    with app_elf.open("rb") as f:
        elf = ELFFile(f)
        offset = next(s["p_offset"] for s in elf.iter_segments() if s["p_paddr"] == seg.address)
    broken = _patched(app_elf, tmp_path / "novec.elf", offset + 4, "<I", 0x9000_0001)
    with pytest.raises(FirmwareLoadError, match=r"novec\.elf: no valid vector table at 0x00010000"):
        Machine(broken)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_corrupted_elf_fails_only_with_a_clear_error(
    app_elf: Path, tmp_path: Path, data: st.DataObject
) -> None:
    raw = bytearray(app_elf.read_bytes())
    # Corrupt a few bytes of the headers (where a damaged file hurts the parser most).
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(4, 0x34 + 32 * 4))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(52, len(raw)))]
    path = tmp_path / "corrupt.elf"
    path.write_bytes(bytes(raw))
    try:
        Machine(path).run_for(us=10)
    except FirmwareLoadError as err:
        assert str(err).startswith(f"{path}: ")
    except FirmwareFault:
        pass  # loadable but broken code: reported as a fault, which is also a clear error
