"""The register DSL's access semantics, and the header and SVD generated from it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cmsis_svd.parser import SVDParser
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.boards import DEFAULT_BOARD
from harness.cli.regs import HEADER, SVD_FILE, generated
from harness.errors import BoardError
from harness.peripherals.registry import KINDS
from harness.regs.dsl import Access, Block, Field, Register, RegisterFile, writable_when

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
        block = KINDS[spec.kind].block
        assert svd_p.base_address == spec.base
        assert [i.value for i in svd_p.interrupts or []] == list(spec.irqs)
        # a register array (dim) stands for its first element, named without the index
        firsts = [r.registers[0] if hasattr(r, "registers") else r for r in svd_p.registers]
        svd_regs = {r.name.removesuffix("[0]"): r for r in firsts}
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


def test_field_accessors_and_pack() -> None:
    r = regs()
    assert r.field("CTRL", "MODE") == 5 and r.field("CTRL", "LOCK") == 1
    ctrl = BLOCK.register("CTRL")
    assert ctrl.pack(EN=1, MODE=3) == 1 | 3 << 4
    assert r.pack("CTRL", MODE=7) == 7 << 4
    assert ctrl.field("MODE").get(0x70) == 7 and ctrl.field("MODE").place(2) == 0x20
    r.set_fields("CTRL", EN=1, MODE=2)
    assert r["CTRL"] == 1 | 2 << 4 | 1 << 8  # LOCK kept
    r["CTRL"] = 0
    r.reset_register("CTRL")
    assert r["CTRL"] == BLOCK.register("CTRL").reset


def test_pack_refuses_unknown_fields_and_values_that_do_not_fit() -> None:
    ctrl = BLOCK.register("CTRL")
    with pytest.raises(KeyError, match="no field 'MDOE'"):
        ctrl.pack(MDOE=1)
    with pytest.raises(ValueError, match="MODE: 8 does not fit in 3 bits"):
        ctrl.pack(MODE=8)
    with pytest.raises(ValueError, match="does not fit"):
        ctrl.pack(EN=-1)
    with pytest.raises(KeyError, match="no register 'CTLR'"):
        regs().pack("CTLR", EN=1)
    with pytest.raises(KeyError, match="no field 'NOPE'"):
        regs().set_fields("CTRL", NOPE=1)


def test_codec_packs_unpacks_and_replaces() -> None:
    codec = BLOCK.register("CTRL").codec("MODE", "EN")
    assert codec.mask == 0x71
    assert codec.pack(5, 1) == 0x51
    assert codec.unpack(0xFFFF_FF5F) == (5, 1)
    assert codec.replace(0xFFFF_FFFF, 0, 0) == 0xFFFF_FF8E
    with pytest.raises(ValueError, match="CTRL: MODE=9 does not fit in 3 bits"):
        codec.pack(9, 0)
    with pytest.raises(ValueError, match="EN=2 does not fit"):
        codec.replace(0, 1, 2)
    with pytest.raises(KeyError, match="no field 'MOD'"):
        BLOCK.register("CTRL").codec("MOD")  # a misspelling fails where the codec is made
    with pytest.raises(KeyError, match="distinct"):
        BLOCK.register("CTRL").codec("EN", "EN")


def test_hooks_on_undeclared_registers_are_refused() -> None:
    r = regs()
    with pytest.raises(KeyError, match="T has no register 'STATUS' to hook"):
        r.on_write["STATUS"] = lambda _i, _w, _n: None
    with pytest.raises(KeyError, match="no register 'EVNT'"):
        r.on_read["EVNT"] = lambda _i: 0


GUARDED = Block(
    "G",
    0x10,
    (
        Register("CTL", 0x0, (Field("INIT", 0, reset=1), Field("CCE", 1),
                              Field("MODE", 4, 2, writable_when=writable_when("CTL", INIT=1,
                                                                              CCE=1)))),
        Register("CFG", 0x4, (Field("RATE", 0, 8), Field("ID", 8, 1, Access.RO, 1)),
                 writable_when=writable_when("CTL", INIT=1, CCE=1)),
        Register("DATA", 0x8, (Field("DATA", 0, 32),)),
    ),
)  # fmt: skip


def test_write_protection(caplog: pytest.LogCaptureFixture) -> None:
    r = RegisterFile(GUARDED, "G0")
    seen: list[int] = []
    r.on_write["CFG"] = lambda _i, _w, new: seen.append(new)
    with caplog.at_level(logging.WARNING):
        r.write(0x4, 0x12)  # CCE clear: the whole register is locked
    assert r.field("CFG", "RATE") == 0 and not seen
    assert "G0: write to CFG ignored: set CTL.INIT and CTL.CCE first" in caplog.text
    r.write(0x0, 0b11 | 3 << 4)  # MODE is judged by CTL before this write: kept
    assert r.field("CTL", "MODE") == 0 and r.field("CTL", "CCE") == 1
    r.write(0x0, 0b11 | 2 << 4)  # now configurable
    assert r.field("CTL", "MODE") == 2
    r.write(0x4, 0x34)
    assert r.field("CFG", "RATE") == 0x34 and seen == [0x134]
    r.write(0x0, 0)  # leaving INIT: MODE may still change with this write
    assert r["CTL"] == 0
    r.write(0x0, 3 << 4)  # INIT clear: MODE locked, the rest written
    assert r.field("CTL", "MODE") == 0
    r.write(0x8, 7)  # unguarded registers are unaffected
    assert r["DATA"] == 7


def test_write_protection_names_are_checked_at_declaration() -> None:
    def block(guard: object) -> Block:
        return Block("B", 0x10, (Register("CTL", 0x0, (Field("INIT", 0),)),
                                 Register("CFG", 0x4, (Field("X", 0),),
                                          writable_when=guard)))  # type: ignore[arg-type]  # fmt: skip

    with pytest.raises(BoardError, match="CFG writable_when names no register 'CTRL'"):
        block(writable_when("CTRL", INIT=1))
    with pytest.raises(BoardError, match="CTL has no field 'INT'"):
        block(writable_when("CTL", INT=1))
    with pytest.raises(BoardError, match="INIT: 2 does not fit"):
        block(writable_when("CTL", INIT=2))
    with pytest.raises(BoardError, match="names no field"):
        writable_when("CTL")
    with pytest.raises(BoardError, match="field A declared twice"):
        Register("R", 0, (Field("A", 0), Field("A", 1)))


def test_peripheral_instances_take_the_parameters_their_kind_needs() -> None:
    """The board is data: an M_CAN names its kernel clock and message RAM, nothing is a
    board-wide special case, and the header carries each instance's parameters."""
    from dataclasses import replace

    mcan0 = next(p for p in DEFAULT_BOARD.peripherals if p.name == "MCAN0")
    assert mcan0.param_dict == {"kernel_clock_hz": 40_000_000, "message_ram": "MCAN_MRAM"}
    bare = replace(mcan0, params=())
    with pytest.raises(BoardError, match=r"MCAN0 \(mcan\) takes parameters "
                       r"\['kernel_clock_hz', 'message_ram'\], not \[\]"):  # fmt: skip
        replace(DEFAULT_BOARD, peripherals=(bare,))
    header = HEADER.read_text()
    assert "#define MCAN0_KERNEL_CLOCK_HZ 40000000UL" in header
    assert "#define MCAN1_MESSAGE_RAM_BASE MCAN_MRAM_BASE" in header
