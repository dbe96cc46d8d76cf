"""The flash controller (FLC) on its own: keys, program and sector erase through the
registers, exact timing, protection and errors, the (72,64) SEC-DED code, fault injection,
power cuts before/during/after an operation, reset and snapshots."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import pytest
from irq_line import Line

from harness.clock import VirtualClock
from harness.peripherals.flash import (
    ERASED_XOR,
    FLASH_BLOCK,
    KEY1,
    KEY2,
    OP_ERASE,
    OP_PROGRAM,
    EccError,
    FlashController,
    decode,
    ecc_of,
    torn_mask,
)

SR = FLASH_BLOCK.register("SR")
CR = FLASH_BLOCK.register("CR")
BUSY, EOP, PGSERR, PGAERR, WRPERR, LOCKERR, KEYERR, ECCC, ECCD = (
    SR.field(n).mask
    for n in ("BUSY", "EOP", "PGSERR", "PGAERR", "WRPERR", "LOCKERR", "KEYERR", "ECCC", "ECCD")
)
LOCK = CR.field("LOCK").mask
CORE_HZ = 48_000_000
PROGRAM_CYCLES = 768  # 16 us at 48 MHz
ERASE_16K_CYCLES = 960_000  # 20 ms at 48 MHz
FLASH_BASE = 0x0800_0000
BOOT = 0x1_0000  # the 64 KB bootloader sector, write-protected
SECTORS = [(0, BOOT)] + [(BOOT + i * 0x4000, 0x4000) for i in range(4)]
FLASH_SIZE = BOOT + 4 * 0x4000
M64 = (1 << 64) - 1


@dataclass
class Rig:
    clock: VirtualClock
    irq: Line
    memory: bytearray
    changed: list[tuple[int, int]]
    cuts: list[int]
    flc: FlashController

    def after(self, cycles: int) -> None:
        self.clock.advance_to(self.clock.cycles + cycles)


def rig(protected: tuple[tuple[int, int], ...] = ((0, BOOT),)) -> Rig:
    clock, irq = VirtualClock(CORE_HZ), Line()
    memory = bytearray(b"\xff" * FLASH_SIZE)
    changed: list[tuple[int, int]] = []
    cuts: list[int] = []
    r = Rig(clock, irq, memory, changed, cuts, None)  # type: ignore[arg-type]
    r.flc = FlashController(
        "FLC", 0x4002_2000, clock, irq, memoryview(memory), FLASH_BASE, SECTORS, protected,
        lambda s, e: changed.append((s, e)), lambda: cuts.append(clock.cycles),
    )  # fmt: skip
    return r


def write(f: FlashController, reg: str, value: int) -> None:
    f.write(FLASH_BLOCK.register(reg).offset, 4, value)


def read(f: FlashController, reg: str) -> int:
    return f.read(FLASH_BLOCK.register(reg).offset, 4)


def unlock(f: FlashController) -> None:
    write(f, "KEY", KEY1)
    write(f, "KEY", KEY2)


def start_program(f: FlashController, address: int, data: int, **cr: int) -> None:
    write(f, "ADDR", address)
    write(f, "DATA0", data & 0xFFFFFFFF)
    write(f, "DATA1", data >> 32)
    write(f, "CR", CR.pack(OP=OP_PROGRAM, START=1, **cr))


def start_erase(f: FlashController, sector: int, **cr: int) -> None:
    write(f, "CR", CR.pack(OP=OP_ERASE, SECTOR=sector, START=1, **cr))


def program(r: Rig, address: int, data: int) -> None:
    start_program(r.flc, address, data)
    assert read(r.flc, "SR") & BUSY
    r.after(PROGRAM_CYCLES)
    assert read(r.flc, "SR") & (BUSY | EOP) == EOP


def unit(r: Rig, address: int) -> int:
    off = address - FLASH_BASE
    return int.from_bytes(r.memory[off : off + 8], "little")


APP = FLASH_BASE + BOOT  # first unprotected unit (sector 1)
DATA = 0x0123_4567_89AB_CDEF


# ---- keys and lock ----


def test_reset_state_and_erased_flash_reads_clean() -> None:
    r = rig()
    f = r.flc
    assert read(f, "CR") == LOCK and read(f, "SR") == 0 and f.locked
    assert read(f, "KEY") == 0 and read(f, "ECCCOUNT") == 0
    assert ecc_of(M64) == 0xFF and set(f.ecc) == {0xFF}  # erased: 72 ones, a codeword
    assert f.ecc_read(FLASH_BASE, FLASH_SIZE) == b"\xff" * FLASH_SIZE
    assert read(f, "SR") == 0 and f.check_fetch(FLASH_BASE, FLASH_SIZE) is None
    assert ecc_of(0) == ERASED_XOR and r.irq.changes == []


def test_unlock_sequence_and_relock() -> None:
    f = rig().flc
    write(f, "KEY", KEY1)
    assert f.locked
    write(f, "KEY", KEY2)
    assert not f.locked and read(f, "CR") == 0 and read(f, "SR") == 0
    write(f, "CR", CR.pack(EOPIE=1))
    assert read(f, "CR") == CR.pack(EOPIE=1)
    write(f, "CR", CR.pack(EOPIE=1, LOCK=1))
    assert f.locked
    write(f, "CR", CR.pack(EOPIE=1, LOCK=1))  # re-locking a locked controller is harmless
    assert read(f, "SR") == 0
    write(f, "CR", 0)  # LOCK=0 cannot unlock, and EOPIE cannot change while locked
    assert f.locked and read(f, "CR") == CR.pack(EOPIE=1, LOCK=1) and read(f, "SR") == LOCKERR
    unlock(f)  # the sequence works again after a plain re-lock
    assert not f.locked and not f.key_blocked


@pytest.mark.parametrize("keys", [(0x1234,), (KEY2,), (KEY1, KEY1), (KEY1, 0)])
def test_a_wrong_key_locks_until_reset(keys: tuple[int, ...]) -> None:
    r = rig()
    f = r.flc
    for k in keys:
        write(f, "KEY", k)
    assert f.locked and f.key_blocked and read(f, "SR") == KEYERR
    write(f, "SR", KEYERR)
    unlock(f)  # ignored: blocked until reset, and flagged again
    assert f.locked and read(f, "SR") == KEYERR
    f.reset()
    assert read(f, "SR") == 0 and f.locked and not f.key_blocked
    unlock(f)
    assert not f.locked


def test_a_key_while_unlocked_is_wrong() -> None:
    f = rig().flc
    unlock(f)
    write(f, "KEY", KEY1)
    assert f.locked and f.key_blocked and read(f, "SR") == KEYERR


def test_start_while_locked_is_a_lock_error() -> None:
    r = rig()
    f = r.flc
    start_program(f, APP, DATA)
    assert read(f, "SR") == LOCKERR and not f.busy and f.operations == 0
    r.after(10 * PROGRAM_CYCLES)
    assert unit(r, APP) == M64 and read(f, "SR") == LOCKERR
    unlock(f)
    write(f, "CR", CR.pack(OP=OP_PROGRAM, START=1, LOCK=1))  # locks, then cannot start
    assert f.locked and not f.busy and f.operations == 0


# ---- program ----


def test_program_exact_timing_then_read_back() -> None:
    r = rig()
    f = r.flc
    unlock(f)
    r.after(1000)
    start_program(f, APP + 8, DATA)
    assert read(f, "SR") == BUSY and f.busy and f.operations == 1
    assert read(f, "CR") & CR.field("START").mask == 0  # START reads 0
    r.clock.advance_to(1000 + PROGRAM_CYCLES - 1)
    assert read(f, "SR") == BUSY and unit(r, APP + 8) == M64  # nothing written yet
    assert r.changed == []
    r.clock.advance_to(1000 + PROGRAM_CYCLES)
    assert read(f, "SR") == EOP and not f.busy
    assert unit(r, APP + 8) == DATA and f.ecc[(BOOT + 8) // 8] == ecc_of(DATA)
    assert r.changed == [(APP + 8, APP + 16)]
    assert f.ecc_read(APP + 8, 8) == DATA.to_bytes(8, "little")
    assert f.ecc_read(APP + 10, 3) == DATA.to_bytes(8, "little")[2:5]
    assert read(f, "SR") == EOP and f.unit_status(APP + 8) == "clean"
    write(f, "SR", EOP)
    assert read(f, "SR") == 0
    assert f.program_cycles == PROGRAM_CYCLES and r.irq.changes == []


def test_program_not_erased_is_refused_and_the_data_unchanged() -> None:
    r = rig()
    f = r.flc
    unlock(f)
    program(r, APP, DATA)
    start_program(f, APP, 0)  # would only clear bits, still refused: the ECC would not fit
    assert read(f, "SR") == EOP | PGSERR and not f.busy and f.operations == 1
    r.after(10 * PROGRAM_CYCLES)
    assert unit(r, APP) == DATA and f.unit_status(APP) == "clean"


def test_program_of_an_erased_unit_with_a_flipped_bit_is_refused() -> None:
    r = rig()
    f = r.flc
    unlock(f)
    f.flip_bit(APP + 3, 5)
    assert unit(r, APP) == M64  # the CPU still reads it erased (corrected)
    start_program(f, APP, DATA)
    assert read(f, "SR") == PGSERR and not f.busy


@pytest.mark.parametrize(
    "address",
    [APP + 4, APP + 1, FLASH_BASE - 8, FLASH_BASE + FLASH_SIZE, FLASH_BASE + FLASH_SIZE + 4, 0],
)
def test_misaligned_or_outside_flash_is_an_address_error(address: int) -> None:
    r = rig()
    f = r.flc
    unlock(f)
    start_program(f, address, DATA)
    assert read(f, "SR") == PGAERR and not f.busy and f.operations == 0
    assert r.changed == []


def test_an_unknown_sector_is_an_address_error() -> None:
    r = rig()
    unlock(r.flc)
    start_erase(r.flc, len(SECTORS))
    assert read(r.flc, "SR") == PGAERR and not r.flc.busy


def test_the_protected_bootloader_can_be_neither_programmed_nor_erased() -> None:
    r = rig()
    f = r.flc
    unlock(f)
    start_program(f, FLASH_BASE + BOOT - 8, DATA)
    assert read(f, "SR") == WRPERR and not f.busy
    write(f, "SR", WRPERR)
    start_erase(f, 0)
    assert read(f, "SR") == WRPERR and not f.busy and f.operations == 0
    r.after(10 * ERASE_16K_CYCLES)
    assert r.memory == b"\xff" * FLASH_SIZE and r.changed == []


def test_a_partly_protected_sector_cannot_be_erased() -> None:
    r = rig(protected=((BOOT + 0x4000 + 0x100, 8),))
    unlock(r.flc)
    start_erase(r.flc, 2)
    assert read(r.flc, "SR") == WRPERR
    write(r.flc, "SR", WRPERR)
    start_erase(r.flc, 1)
    assert read(r.flc, "SR") == BUSY


def test_erase_then_program_again() -> None:
    r = rig()
    f = r.flc
    unlock(f)
    last = APP + 0x4000 - 8
    program(r, APP, DATA)
    program(r, last, ~DATA & M64)
    program(r, APP + 0x4000, DATA)  # the next sector
    write(f, "SR", EOP)
    r.changed.clear()
    start = r.clock.cycles
    start_erase(f, 1)
    assert read(f, "SR") == BUSY
    r.clock.advance_to(start + ERASE_16K_CYCLES - 1)
    assert read(f, "SR") == BUSY and unit(r, APP) == DATA  # changes at the end only
    r.clock.advance_to(start + ERASE_16K_CYCLES)
    assert read(f, "SR") == EOP and r.changed == [(APP, APP + 0x4000)]
    assert unit(r, APP) == M64 and unit(r, last) == M64 and unit(r, APP + 0x4000) == DATA
    assert set(f.ecc[BOOT // 8 : (BOOT + 0x4000) // 8]) == {0xFF}
    program(r, APP, 0x42)
    assert unit(r, APP) == 0x42 and f.operations == 5


def test_erase_duration_scales_with_the_sector_size() -> None:
    r = rig(protected=())
    f = r.flc
    assert f.sector_cycles(0x4000) == ERASE_16K_CYCLES
    assert f.sector_cycles(BOOT) == 4 * ERASE_16K_CYCLES
    unlock(f)
    start_erase(f, 0)
    r.after(4 * ERASE_16K_CYCLES - 1)
    assert read(f, "SR") == BUSY
    r.after(1)
    assert read(f, "SR") == EOP


def test_durations_come_from_the_constructor_figures() -> None:
    clock = VirtualClock(80_000_000)
    memory = bytearray(b"\xff" * FLASH_SIZE)
    f = FlashController("FLC", 0, clock, Line(), memoryview(memory), 0, SECTORS, (),
                        lambda s, e: None, lambda: None, program_us=10.5,
                        erase_ms_per_16k=2.5)  # fmt: skip
    assert f.program_cycles == 840  # 10.5 us at 80 MHz
    assert f.sector_cycles(0x4000) == 200_000 and f.sector_cycles(0x8000) == 400_000


def test_start_while_busy_is_ignored() -> None:
    r = rig()
    f = r.flc
    unlock(f)
    start_program(f, APP, DATA)
    start_program(f, APP + 8, DATA)
    assert f.operations == 1 and read(f, "SR") == BUSY
    r.after(PROGRAM_CYCLES)
    assert unit(r, APP) == DATA and unit(r, APP + 8) == M64


def test_start_latches_address_and_data() -> None:
    r = rig()
    f = r.flc
    unlock(f)
    start_program(f, APP, DATA)
    write(f, "ADDR", APP + 8)
    write(f, "DATA0", 0)
    r.after(PROGRAM_CYCLES)
    assert unit(r, APP) == DATA and unit(r, APP + 8) == M64


def test_interrupts() -> None:
    r = rig()
    f = r.flc
    unlock(f)
    start_program(f, APP, DATA, EOPIE=1)
    assert not r.irq.level
    r.after(PROGRAM_CYCLES)
    assert r.irq.level
    write(f, "SR", EOP)
    assert not r.irq.level
    start_program(f, APP + 4, DATA, ERRIE=1)  # misaligned: the error interrupt
    assert r.irq.level and read(f, "SR") == PGAERR
    write(f, "SR", PGAERR)
    assert not r.irq.level
    f.flip_bit(APP, 0)
    f.ecc_read(APP, 8)  # a corrected error does not interrupt
    assert not r.irq.level and read(f, "SR") == ECCC
    f.flip_bit(APP, 1)
    with pytest.raises(EccError):
        f.ecc_read(APP, 8)
    assert r.irq.level  # ECCD with ERRIE
    write(f, "CR", CR.pack(ERRIE=0))
    assert not r.irq.level
    assert r.irq.changes == [True, False, True, False, True, False]


# ---- the SEC-DED code ----

WORDS = [0, M64, DATA, 0x8000_0000_0000_0001, 0x5555_5555_5555_5555]


@pytest.mark.parametrize("data", WORDS)
def test_every_single_bit_error_is_corrected(data: int) -> None:
    ecc = ecc_of(data)
    assert decode(data, ecc) == ("clean", data, ecc)
    for bit in range(72):
        d, e = (data ^ (1 << bit), ecc) if bit < 64 else (data, ecc ^ (1 << (bit - 64)))
        assert decode(d, e) == ("single", data, ecc), bit


@pytest.mark.parametrize("data", WORDS)
def test_every_double_bit_error_is_detected(data: int) -> None:
    ecc = ecc_of(data)
    word = data | ecc << 64
    pairs = list(itertools.combinations(range(72), 2))
    assert len(pairs) == 2556
    for a, b in pairs:
        bad = word ^ (1 << a) ^ (1 << b)
        assert decode(bad & M64, bad >> 64)[0] == "double", (a, b)


def test_the_code_has_distance_four_on_random_words() -> None:
    rng = random.Random(7)
    codewords = {ecc_of(d) for d in (rng.getrandbits(64) for _ in range(2000))}
    assert len(codewords) > 100  # the check byte depends on the data
    for _ in range(300):
        d = rng.getrandbits(64)
        for bit in range(64):
            other = d ^ (1 << bit)
            assert (ecc_of(d) ^ ecc_of(other)).bit_count() >= 3  # distance >= 4 overall


# ---- fault injection ----


def test_a_single_flipped_bit_is_corrected_flagged_and_counted() -> None:
    r = rig()
    f = r.flc
    unlock(f)
    program(r, APP + 16, DATA)
    write(f, "SR", EOP)
    r.changed.clear()
    f.flip_bit(APP + 16 + 5, 3)
    assert unit(r, APP + 16) == DATA and r.changed == []  # the CPU's view stays correct
    assert f.raw == {(BOOT + 16) // 8: DATA ^ (1 << 43)}
    assert f.unit_status(APP + 16) == "single" and f.check_fetch(APP + 16, 8) is None
    assert read(f, "SR") == 0  # queries do not flag
    assert f.ecc_read(APP, 32) == bytes(r.memory[BOOT : BOOT + 32])
    assert read(f, "SR") == ECCC and read(f, "ECCADDR") == APP + 16
    assert read(f, "ECCCOUNT") == 1
    f.ecc_read(APP + 20, 1)  # not scrubbed: found again
    assert read(f, "ECCCOUNT") == 2 and f.corrected_total == 2
    write(f, "SR", ECCC)
    assert read(f, "SR") == 0
    f.flip_bit(APP + 16 + 5, 3)  # flipped back: clean again
    assert f.raw == {} and f.unit_status(APP + 16) == "clean"


def test_a_flipped_ecc_bit_is_corrected() -> None:
    r = rig()
    f = r.flc
    f.flip_ecc_bit(APP, 7)
    assert unit(r, APP) == M64 and f.raw == {} and f.unit_status(APP) == "single"
    assert f.ecc_read(APP, 8) == b"\xff" * 8 and read(f, "SR") == ECCC


def test_two_flipped_bits_are_uncorrectable() -> None:
    r = rig()
    f = r.flc
    unlock(f)
    program(r, APP, DATA)
    r.changed.clear()
    f.flip_bit(APP, 0)
    f.flip_bit(APP + 7, 7)
    bad = DATA ^ 1 ^ (1 << 63)
    assert unit(r, APP) == bad and r.changed == [(APP, APP + 8)]  # the CPU sees raw data
    assert f.raw == {}
    assert f.check_fetch(APP, 8) == "double" and f.check_fetch(APP + 4, 2) == "double"
    assert f.check_fetch(APP + 8, 8) is None and f.check_fetch(APP - 8, 8) is None
    assert read(f, "SR") == EOP
    with pytest.raises(EccError) as info:
        f.ecc_read(APP - 8, 24)
    assert info.value.address == APP
    assert read(f, "SR") == EOP | ECCD and read(f, "ECCADDR") == APP
    assert read(f, "ECCCOUNT") == 0


def test_the_machine_can_resync_contents_loaded_behind_its_back() -> None:
    r = rig()
    f = r.flc
    r.memory[BOOT : BOOT + 5] = b"hello"
    assert f.unit_status(APP) != "clean"  # the stored ECC is still that of erased flash
    f.resync_ecc(APP, APP + 5)
    assert f.unit_status(APP) == "clean"
    assert f.ecc[BOOT // 8] == ecc_of(int.from_bytes(r.memory[BOOT : BOOT + 8], "little"))
    memory = bytearray(b"\xff" * FLASH_SIZE)
    memory[100:200] = bytes(range(100))
    g = FlashController("FLC", 0, VirtualClock(CORE_HZ), Line(), memoryview(memory), 0,
                        SECTORS, (), lambda s, e: None, lambda: None)  # fmt: skip
    assert g.check_fetch(0, FLASH_SIZE) is None and g.ecc_read(96, 8) == bytes(memory[96:104])
    assert g.regs["SR"] == 0


# ---- power cuts ----


def test_torn_mask_is_splitmix64_of_the_operation_index() -> None:
    # SplitMix64 from state 0: 0xE220A8397B1DCDAF, then 0x6E789E6AA1B965F4
    assert torn_mask(0) == 0xE220A8397B1DCDAF | 0xF4 << 64
    assert torn_mask(3) == torn_mask(3) != torn_mask(4)


def test_cut_before_a_program_leaves_the_unit_erased() -> None:
    r = rig()
    f = r.flc
    unlock(f)
    program(r, APP, DATA)  # operation 0
    f.cut_power(1, "before")
    start_program(f, APP + 8, DATA)
    assert r.cuts == [r.clock.cycles] and f.cuts == [(1, "before", r.clock.cycles)]
    assert not f.busy and read(f, "SR") & BUSY == 0 and f.operations == 2
    r.after(10 * PROGRAM_CYCLES)
    assert unit(r, APP + 8) == M64 and f.unit_status(APP + 8) == "clean"
    assert len(r.cuts) == 1


def test_cut_after_a_program_leaves_it_programmed() -> None:
    r = rig()
    f = r.flc
    unlock(f)
    f.cut_power(0, "after")
    start = r.clock.cycles
    start_program(f, APP, DATA)
    r.after(10 * PROGRAM_CYCLES)
    assert r.cuts == [start + PROGRAM_CYCLES] and f.cuts == [(0, "after", start + PROGRAM_CYCLES)]
    assert unit(r, APP) == DATA and f.unit_status(APP) == "clean" and read(f, "SR") == EOP


def test_cut_during_a_program_tears_the_unit() -> None:
    r = rig()
    f = r.flc
    unlock(f)
    program(r, APP, DATA)  # operation 0
    f.cut_power(1, "during")
    start = r.clock.cycles
    start_program(f, APP + 8, DATA, EOPIE=1)
    r.after(10 * PROGRAM_CYCLES)
    assert r.cuts == [start + PROGRAM_CYCLES // 2]
    assert f.cuts == [(1, "during", start + PROGRAM_CYCLES // 2)]
    assert read(f, "SR") == 0  # START cleared operation 0's EOP; no EOP, no BUSY now
    assert not r.irq.level
    mask = torn_mask(1)
    raw = M64 & ~(~DATA & mask & M64)  # NOR: only some of the bits to clear were cleared
    ecc = 0xFF & ~(~ecc_of(DATA) & (mask >> 64) & 0xFF)
    assert raw not in (DATA, M64)  # torn data; this mask happens to program all the ECC
    assert ecc == ecc_of(DATA) and decode(raw, ecc)[0] != "clean"  # so it no longer matches
    assert f.ecc[(BOOT + 8) // 8] == ecc
    # this pattern (operation 1) is uncorrectable: the CPU sees the raw bits
    assert decode(raw, ecc)[0] == "double"
    assert unit(r, APP + 8) == raw and f.check_fetch(APP + 8, 8) == "double"
    with pytest.raises(EccError):
        f.ecc_read(APP + 8, 8)
    start_program(f, APP + 8, DATA)  # and it cannot be programmed before an erase
    assert read(f, "SR") & PGSERR


def test_a_reset_abandons_an_operation_without_tearing_it() -> None:
    r = rig()
    f = r.flc
    unlock(f)
    start_program(f, APP, DATA)
    r.after(PROGRAM_CYCLES // 2)
    f.reset()
    assert read(f, "SR") == 0 and f.locked and not f.busy and f.operations == 1
    r.after(10 * PROGRAM_CYCLES)
    assert read(f, "SR") == 0 and unit(r, APP) == M64 and f.unit_status(APP) == "clean"
    unlock(f)
    program(r, APP, DATA)  # the unit is still erased
    assert unit(r, APP) == DATA


def fill_sector_1(r: Rig) -> None:
    """Program the first, the middle two and the last unit of sector 1."""
    for off in (0, 0x1FF8, 0x2000, 0x2008, 0x3FF8):
        program(r, APP + off, DATA ^ off)
    write(r.flc, "SR", EOP)


@pytest.mark.parametrize("phase", ["before", "after"])
def test_cut_before_or_after_an_erase(phase: str) -> None:
    r = rig()
    f = r.flc
    unlock(f)
    fill_sector_1(r)
    f.cut_power(5, phase)
    start_erase(f, 1)
    r.after(2 * ERASE_16K_CYCLES)
    assert len(r.cuts) == 1
    erased = phase == "after"
    for off in (0, 0x1FF8, 0x2000, 0x2008, 0x3FF8):
        assert unit(r, APP + off) == (M64 if erased else DATA ^ off)
        assert f.unit_status(APP + off) == "clean"


def test_cut_during_an_erase_erases_a_prefix_and_tears_the_boundary_unit() -> None:
    r = rig()
    f = r.flc
    unlock(f)
    fill_sector_1(r)
    f.cut_power(5, "during")
    start = r.clock.cycles
    start_erase(f, 1)
    r.after(2 * ERASE_16K_CYCLES)
    assert r.cuts == [start + ERASE_16K_CYCLES // 2] and read(f, "SR") == 0
    # 2048 units: 0..1023 erased, unit 1024 (offset 0x2000) torn, the rest untouched
    assert unit(r, APP) == M64 and unit(r, APP + 0x1FF8) == M64
    assert unit(r, APP + 0x2008) == DATA ^ 0x2008 and unit(r, APP + 0x3FF8) == DATA ^ 0x3FF8
    mask = torn_mask(5)
    old = DATA ^ 0x2000
    raw = old | (~old & mask & M64)  # erasing sets bits: only some of them were set
    ecc = ecc_of(old) | (~ecc_of(old) & (mask >> 64) & 0xFF)
    assert raw not in (old, M64) and f.ecc[(BOOT + 0x2000) // 8] == ecc
    # this pattern (operation 5) decodes as a single-bit error: more than two bits are wrong,
    # so SEC-DED "corrects" it into a third value, neither the old data nor erased
    status, fixed, _ = decode(raw, ecc)
    assert status == "single" and fixed not in (old, M64, raw)
    assert unit(r, APP + 0x2000) == fixed and f.raw == {(BOOT + 0x2000) // 8: raw}
    assert f.check_fetch(APP + 0x2000, 8) is None
    assert f.ecc_read(APP + 0x2000, 8) == fixed.to_bytes(8, "little")
    assert read(f, "SR") == ECCC and read(f, "ECCADDR") == APP + 0x2000
    assert f.check_fetch(APP, 0x2000) is None and f.check_fetch(APP + 0x2008, 0x1FF8) is None


def test_a_torn_program_can_be_correctable() -> None:
    """Which operation index gives which outcome is fixed; find one of each kind and check
    the model agrees with the documented rule."""
    outcomes: dict[str, int] = {}
    for index in range(40):
        mask = torn_mask(index)
        raw = M64 & ~(~DATA & mask & M64)
        ecc = 0xFF & ~(~ecc_of(DATA) & (mask >> 64) & 0xFF)
        outcomes.setdefault(decode(raw, ecc)[0], index)
    assert set(outcomes) == {"double", "single"}
    index = outcomes["single"]
    r = rig()
    f = r.flc
    unlock(f)
    for i in range(index):
        program(r, APP + 8 * i, DATA)
    f.cut_power(index, "during")
    start_program(f, APP + 8 * index, DATA)
    r.after(PROGRAM_CYCLES)
    assert len(r.cuts) == 1
    status, fixed, _ = decode(f.raw.get((BOOT + 8 * index) // 8, unit(r, APP + 8 * index)),
                              f.ecc[(BOOT + 8 * index) // 8])  # fmt: skip
    assert status == "single" and f.unit_status(APP + 8 * index) == "single"
    assert unit(r, APP + 8 * index) == fixed  # the CPU reads the (mis)corrected value
    f.ecc_read(APP + 8 * index, 8)
    assert read(f, "SR") & ECCC


def test_cut_power_arguments_are_checked() -> None:
    r = rig()
    f = r.flc
    unlock(f)
    program(r, APP, DATA)
    with pytest.raises(ValueError, match="already started"):
        f.cut_power(0, "after")
    with pytest.raises(ValueError, match="phase"):
        f.cut_power(1, "midway")
    f.cut_power(2, "before")
    program(r, APP + 8, DATA)  # operation 1: no cut
    assert r.cuts == []


# ---- snapshots ----


def test_snapshot_restore_round_trip() -> None:
    r = rig()
    f = r.flc
    unlock(f)
    program(r, APP, DATA)
    f.flip_bit(APP, 1)  # a corrected unit: its raw data is model state
    f.flip_ecc_bit(APP + 8, 2)
    f.cut_power(2, "after")
    start_program(f, APP + 16, DATA, EOPIE=1)  # operation 1 in flight
    r.after(100)
    saved = (f.snapshot(), r.clock.state(), bytes(r.memory))

    def run() -> tuple[bytes, bytes, bytes, dict[int, int], int, int, int,
                      list[tuple[int, str, int]], bool, int]:  # fmt: skip
        r.after(10 * PROGRAM_CYCLES)
        write(f, "SR", EOP)
        start_program(f, APP + 24, DATA)  # operation 2: power cut after it
        r.after(10 * PROGRAM_CYCLES)
        data = f.ecc_read(APP, 32)
        return (data, bytes(r.memory), bytes(f.ecc), dict(f.raw), read(f, "SR"),
                read(f, "ECCCOUNT"), f.operations, list(f.cuts), r.irq.level,
                r.clock.cycles)  # fmt: skip

    first = run()
    f.flip_bit(APP + 40, 0)
    f.flip_bit(APP + 40, 1)
    f.reset()
    snapshot, clock_state, memory = saved
    r.clock.restore(clock_state)
    r.memory[:] = memory
    f.restore(snapshot)
    assert f.busy and read(f, "SR") == BUSY and f.unit_status(APP) == "single"
    assert isinstance(f.ecc, bytearray)
    assert run() == first
    assert first[7] == [(2, "after", first[9] - 10 * PROGRAM_CYCLES + PROGRAM_CYCLES)]


def test_geometry_is_checked() -> None:
    memory = bytearray(FLASH_SIZE)

    def make(sectors: list[tuple[int, int]], protected: list[tuple[int, int]]) -> None:
        FlashController("FLC", 0, VirtualClock(CORE_HZ), Line(), memoryview(memory), 0,
                        sectors, protected, lambda s, e: None, lambda: None)  # fmt: skip

    with pytest.raises(ValueError, match="overlaps"):
        make([(0, 0x4000), (0x2000, 0x4000)], [])
    with pytest.raises(ValueError, match="inside"):
        make([(0, FLASH_SIZE + 8)], [])
    with pytest.raises(ValueError, match="protected"):
        make([(0, 0x4000)], [(FLASH_SIZE - 8, 16)])
    with pytest.raises(ValueError, match="writable"):
        FlashController("FLC", 0, VirtualClock(CORE_HZ), Line(), memoryview(bytes(64)), 0,
                        [(0, 64)], [], lambda s, e: None, lambda: None)  # fmt: skip


def test_byte_writes_to_cr_and_empty_reads() -> None:
    r = rig()
    f = r.flc
    write(f, "ADDR", APP)
    write(f, "DATA0", 0x11)
    write(f, "DATA1", 0x22)
    f.write(CR.offset + 2, 1, 1)  # START alone, locked: refused
    assert read(f, "SR") == LOCKERR and not f.busy
    write(f, "SR", LOCKERR)
    unlock(f)
    f.write(CR.offset, 1, OP_PROGRAM)
    f.write(CR.offset + 2, 1, 1)  # START in its own byte lane
    assert f.busy
    r.after(PROGRAM_CYCLES)
    assert unit(r, APP) == 0x22_0000_0011 and read(f, "CR") == OP_PROGRAM
    f.flip_bit(APP, 0)
    f.flip_bit(APP, 1)
    assert f.ecc_read(APP + 3, 0) == b"" and f.check_fetch(APP + 3, 0) is None
    with pytest.raises(ValueError, match="outside"):
        f.ecc_read(FLASH_BASE + FLASH_SIZE - 4, 8)
    with pytest.raises(ValueError, match="outside"):
        f.flip_bit(FLASH_BASE - 1, 0)
