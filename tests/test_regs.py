"""The register DSL's access semantics, and the header and SVD generated from it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cmsis_svd.parser import SVDParser
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.board import PERIPHERAL_KINDS
from harness.boards import DEFAULT_BOARD
from harness.cli.regs import HEADER, SVD_FILE, generated
from harness.errors import BoardError
from harness.regs.dsl import Access, Block, Field, Register, RegisterFile

BLOCK = Block(
    "T",
    0x20,
    (
        Register("CTRL", 0x0, (Field("EN", 0), Field("MODE", 4, 3, reset=5),
                               Field("LOCK", 8, 1, Access.RO, 1),
                               Field("KICK", 12, 1, Access.WO),
                               Field("TURBO", 16, modelled=False))),
        Register("STAT", 0x4, (Field("DONE", 0, 1, Access.W1C), Field("ERR", 1, 1, Access.W1C))),
        Register("EVT", 0x8, (Field("HIT", 0, 8, Access.RC),)),
        Register("SET", 0xC, (Field("BITS", 0, 32, Access.W1S),)),
    ),
)  # fmt: skip


def regs() -> RegisterFile:
    return RegisterFile(BLOCK, "T0")


def test_reset_values() -> None:
    r = regs()
    assert r.read(0x0) == (5 << 4) | (1 << 8)


def test_read_only_and_write_only_fields() -> None:
    r = regs()
    r.write(0x0, 0xFFFF_FFFF & ~(1 << 16))
    value = r.read(0x0)
    assert value & (1 << 8)  # RO kept its value
    assert not value & (1 << 12)  # WO reads as zero
    assert value & 1 and (value >> 4) & 7 == 7


def test_write_one_to_clear() -> None:
    r = regs()
    r["STAT"] = 0b11
    r.write(0x4, 0b01)
    assert r.read(0x4) == 0b10


def test_write_one_to_set() -> None:
    r = regs()
    r.write(0xC, 0b0101)
    r.write(0xC, 0b0010)
    assert r.read(0xC) == 0b0111


def test_read_to_clear() -> None:
    r = regs()
    r["EVT"] = 0x5A
    assert r.read(0x8) == 0x5A
    assert r.read(0x8) == 0


def test_byte_lanes() -> None:
    r = regs()
    r["STAT"] = 0b11
    r.write(0x5, 0xFF, size=1)  # a byte write to the upper lane must not clear DONE/ERR
    assert r.read(0x4) == 0b11
    r.write(0x0, 0x01, size=1)
    assert r.read(0x0, size=1) == 0x01
    assert r.read(0x1, size=1) == 0x01  # LOCK (bit 8) in the second byte


def test_hooks_receive_written_bits() -> None:
    r = regs()
    seen: list[tuple[int, int, int]] = []
    r.on_write["SET"] = lambda i, written, new: seen.append((i, written, new))
    r.write(0xC, 0b10)
    assert seen == [(0, 0b10, 0b10)]


def test_reserved_and_unmodelled_bits_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    r = regs()
    with caplog.at_level(logging.WARNING):
        r.write(0x0, 1 << 20)  # reserved
        r.write(0x0, 1 << 16)  # TURBO: documented, not modelled
        r.write(0x1C, 1)  # no register there
    text = caplog.text
    assert "T0: CTRL: write sets reserved bits 0x00100000" in text
    assert "CTRL: bits 0x00010000 are documented but not modelled" in text
    assert "write of unimplemented offset +0x1C" in text


def test_declaration_errors() -> None:
    with pytest.raises(BoardError, match="field B overlaps"):
        Register("R", 0, (Field("A", 0, 4), Field("B", 3, 2)))
    with pytest.raises(BoardError, match="outside bits"):
        Register("R", 0, (Field("A", 30, 4),))
    with pytest.raises(BoardError, match="R2 overlaps R1"):
        Block("X", 0x10, (Register("R1", 0, ()), Register("R2", 0, ())))


def test_checked_in_header_and_svd_are_current() -> None:
    for path, text in generated().items():
        assert path.read_text() == text, f"{path} is stale: run `harness regs`"


def test_header_declares_every_register_at_its_offset() -> None:
    header = HEADER.read_text()
    assert "#define TIM2 ((TIM_Type *)0x40001000UL)" in header
    assert "#define SysTick_CSR_COUNTFLAG_Pos 16U" in header
    assert "volatile uint32_t ISER[2];" in header
    assert "#define BANK_B_BASE 0x00100000UL" in header


def test_svd_parses_and_matches_the_declarations() -> None:
    device = SVDParser.for_xml_file(str(SVD_FILE)).get_device()
    assert device.cpu is not None and device.cpu.nvic_prio_bits == 4
    by_name = {p.name: p for p in device.peripherals}
    assert set(by_name) == {p.name for p in DEFAULT_BOARD.peripherals}
    for spec in DEFAULT_BOARD.peripherals:
        svd_p = by_name[spec.name]
        block = PERIPHERAL_KINDS[spec.kind][0]
        assert svd_p.base_address == spec.base
        assert [i.value for i in svd_p.interrupts or []] == list(spec.irqs)
        svd_regs = {r.name: r for r in svd_p.registers}
        assert set(svd_regs) == {r.name for r in block.registers}
        for reg in block.registers:
            svd_r = svd_regs[reg.name]
            assert svd_r.address_offset == reg.offset
            assert svd_r.reset_value == reg.reset
            fields = {f.name: f for f in svd_r.fields}
            for field in reg.fields:
                assert fields[field.name].bit_offset == field.lsb
                assert fields[field.name].bit_width == field.width
            w1c = [f.name for f in reg.fields if f.access is Access.W1C]
            for name in w1c:
                assert fields[name].modified_write_values.value == "oneToClear"
            rc = [f.name for f in reg.fields if f.access is Access.RC]
            for name in rc:
                assert fields[name].read_action.value == "clear"


def test_header_compiles_into_firmware(firmware: dict[str, Path]) -> None:
    assert all(p.exists() for p in firmware.values())


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from([1, 2, 4]), st.integers(0, 3), st.integers(0, 2**32 - 1)))
)
def test_sub_word_writes_touch_only_their_lanes(writes: list[tuple[int, int, int]]) -> None:
    block = Block("P", 0x10, (Register("DATA", 0x0, (Field("DATA", 0, 32),)),))
    r = RegisterFile(block, "P0")
    model = 0
    for size, lane, value in writes:
        offset = lane - lane % size  # accesses are naturally aligned
        lanes = ((1 << (8 * size)) - 1) << (8 * offset)
        value &= (1 << (8 * size)) - 1
        r.write(offset, value, size)
        model = (model & ~lanes) | (value << (8 * offset))
        assert r.read(0) == model
        assert r.read(offset, size) == value
