"""Faults the firmware takes (`Machine(faults="firmware")`), as ARMv7-M reports them: the
configurable handlers when SHCSR enables them, HardFault otherwise (FORCED), lockup when
HardFault itself faults; CFSR, HFSR, BFAR, MMFAR and the stacked PC as the handler reads them.
Also CPU reads of flash: ECC corrected and counted, double-bit errors a precise BusFault, and
reads of the bank being programmed stalled until the operation ends."""

from __future__ import annotations

from pathlib import Path

import pytest
from irqtest import run, start, trace, words

from harness import FirmwareFault, Machine
from harness.core import faults as arch
from harness.core.nvic import BUSFAULT, HARDFAULT, MEMMANAGE, USAGEFAULT
from harness.peripherals.flash import FlashController


@pytest.fixture(scope="module")
def elf(firmware: dict[str, Path]) -> Path:
    return firmware["irqtest"]


def fault_log(m: Machine) -> list[tuple[int, int, int, int, int, int]]:
    """(IPSR, CFSR, HFSR, BFAR, MMFAR, stacked PC) per fault the firmware's handlers saw."""
    raw = words(m, "fault_log")
    count = min(int(m.read_symbol("fault_count")), 8)
    return [tuple(raw[6 * i : 6 * i + 6]) for i in range(count)]  # type: ignore[misc]


def function_of(m: Machine, pc: int) -> str | None:
    return m.image.function_at(pc)


def test_enabled_faults_reach_their_own_handlers_with_the_status_the_architecture_defines(
    elf: Path,
) -> None:
    m = run(elf, "HANDLED_FAULTS", timeout_ms=20, faults="firmware")
    assert trace(m) == "k"  # every fault handled, the thread ran on to its end
    log = fault_log(m)
    expected = [  # (exception, CFSR, address register, the function that faulted)
        (BUSFAULT, arch.PRECISERR | arch.BFARVALID, 0x0001_0000, "fault_flash_write"),
        (USAGEFAULT, arch.UNDEFINSTR, None, "fault_undefined"),
        (USAGEFAULT, arch.UNALIGNED, None, "fault_unaligned_ldm"),
        # a peripheral bus error is imprecise: reported after the load, BFAR not valid
        (BUSFAULT, arch.IMPRECISERR, None, "fault_bus_error"),
        (MEMMANAGE, arch.IACCVIOL, None, None),  # the fetch at 0x40000000
    ]
    assert len(log) == len(expected)
    for (ipsr, cfsr, hfsr, bfar, _mmfar, pc), (exc, bits, address, function) in zip(
        log, expected, strict=True
    ):
        assert (ipsr, cfsr, hfsr) == (exc, bits, 0), hex(pc)
        if address is not None:
            assert bfar == address
        if function is None:
            assert pc == 0x4000_0000  # the stacked PC is the address that could not be fetched
        elif bits == arch.IMPRECISERR:
            assert function_of(m, pc) == "main"  # after the return from fault_bus_error
        else:
            assert function_of(m, pc) == function
    # precise: the stacked PC is the faulting instruction itself (a 16-bit STR)
    assert m.read_memory(log[0][5], 2)[1] & 0xF8 == 0x60
    assert [f.taken_by for f in m.faults_taken] == [
        "BusFault", "UsageFault", "UsageFault", "BusFault", "MemManage"]


def test_a_disabled_fault_escalates_to_hardfault_forced(elf: Path) -> None:
    m = run(elf, "ESCALATED_FAULT", timeout_ms=20, faults="firmware")
    assert trace(m) == "k"
    ((ipsr, cfsr, hfsr, bfar, _mmfar, pc),) = fault_log(m)
    assert ipsr == HARDFAULT and hfsr == arch.FORCED
    assert cfsr == arch.PRECISERR | arch.BFARVALID and bfar == 0x3000_0000
    assert function_of(m, pc) == "fault_unmapped_read"


def test_a_fault_in_the_busfault_handler_escalates_to_hardfault(elf: Path) -> None:
    m = run(elf, "FAULT_IN_BUSFAULT", timeout_ms=20, faults="firmware")
    assert trace(m) == "k"
    log = fault_log(m)
    assert [entry[0] for entry in log] == [BUSFAULT, HARDFAULT]
    assert log[1][2] == arch.FORCED and log[1][3] == 0x3000_0004
    assert function_of(m, log[1][5]) == "fault_common"  # taken inside the BusFault handler


def test_a_fault_in_hardfault_locks_up_and_the_chip_resets_with_the_cause_lockup(
    elf: Path,
) -> None:
    m = start(elf, "LOCKUP", faults="firmware")
    m.run_until(lambda: m.read_symbol("done") == 1, timeout_ms=20)
    assert m.read_symbol("boot_count") == 2
    assert m.read_symbol("reset_causes") & (1 << 4)  # SYSCTL.RSTCAUSE.LOCKUP
    assert [f.taken_by for f in m.faults_taken] == ["HardFault", "lockup"]
    assert m.faults_taken[1].address == 0x3000_0004


def test_the_stop_mode_still_stops_at_the_first_fault(elf: Path) -> None:
    with pytest.raises(FirmwareFault, match="write to read-only memory at address 0x00010000"):
        run(elf, "HANDLED_FAULTS", timeout_ms=20)
    with pytest.raises(ValueError, match="faults must be 'stop'"):
        Machine(elf, faults="ignore")


# ---- flash reads by the CPU ----


def _flc(m: Machine) -> FlashController:
    flc = m.peripheral("FLC")
    assert isinstance(flc, FlashController)
    return flc


def test_cpu_reads_through_ecc_single_corrected_and_counted_double_a_precise_busfault(
    elf: Path,
) -> None:
    m = start(elf, "ECC_READ", faults="firmware")
    target = m.image.symbol("ecc_target").address
    flc = _flc(m)
    flc.flip_bit(target, 3)  # unit 0: one bit, corrected
    flc.flip_bit(target + 8, 0)  # unit 1: two bits, uncorrectable
    flc.flip_bit(target + 9, 5)
    m.run_until(lambda: m.read_symbol("done") == 1, timeout_ms=20)
    assert trace(m) == "k"
    assert words(m, "ecc_value")[0] == 0x1111_1111  # corrected
    assert flc.corrected_total == 1 and flc.regs["SR"] & (1 << 8)  # ECCC
    ((ipsr, cfsr, _hfsr, bfar, _mmfar, pc),) = fault_log(m)
    assert (ipsr, cfsr, bfar) == (BUSFAULT, arch.PRECISERR | arch.BFARVALID, target + 8)
    assert flc.regs["SR"] & (1 << 9) and flc.regs["ECCADDR"] == target + 8  # ECCD
    assert words(m, "ecc_value")[1] != 0x3333_3333  # never the raw word: the load was skipped
    assert m.faults_taken[0].kind.startswith("uncorrectable ECC error")
    assert function_of(m, pc) == "main"


def test_a_double_bit_error_stops_the_run_in_stop_mode(elf: Path) -> None:
    m = start(elf, "ECC_READ")
    target = m.image.symbol("ecc_target").address
    _flc(m).flip_bit(target + 8, 0)
    _flc(m).flip_bit(target + 8, 1)
    with pytest.raises(FirmwareFault, match=f"uncorrectable ECC error .* at address "
                                            f"0x{target + 8:08X}"):  # fmt: skip
        m.run_for(ms=5)


def test_an_instruction_fetch_from_an_uncorrectable_unit_is_an_instruction_bus_error(
    elf: Path,
) -> None:
    m = start(elf, "ESCALATED_FAULT")
    function = m.image.symbol("fault_unmapped_read").address & ~1
    _flc(m).flip_bit(function, 0)
    _flc(m).flip_bit(function, 1)
    with pytest.raises(FirmwareFault) as info:
        m.run_for(ms=5)
    assert info.value.kind.startswith("uncorrectable ECC error")
    assert info.value.pc == function
    m = start(elf, "ESCALATED_FAULT", faults="firmware")
    _flc(m).flip_bit(function, 0)
    _flc(m).flip_bit(function, 1)
    m.run_until(lambda: m.read_symbol("done") == 1, timeout_ms=20)
    ((ipsr, cfsr, hfsr, _bfar, _mmfar, pc),) = fault_log(m)
    assert (ipsr, cfsr, hfsr, pc) == (HARDFAULT, arch.IBUSERR, arch.FORCED, function)


def test_reads_of_the_bank_being_programmed_stall_until_it_is_done(elf: Path) -> None:
    m = run(elf, "RWW", timeout_ms=20)
    same_bank, other_bank = words(m, "rww_polls")
    program = _flc(m).program_cycles
    assert same_bank <= 1  # the core, running from bank 0, waited for the program to end
    assert other_bank > 100  # read-while-write across banks: the core ran on, polling
    assert program - 100 <= m.stall_cycles <= program
    assert m.read_memory(0x000F_0000, 8) == bytes.fromhex("78563412f0debc9a")


def test_the_security_unit_refuses_to_mac_flash_with_an_uncorrectable_unit(elf: Path) -> None:
    m = start(elf, "IDLE")
    sec = m.peripheral("SEC")
    sec.provision_key(0, bytes(range(16)))
    target = m.image.symbol("ecc_target").address
    status = sec.block.register("STATUS")

    def cmac() -> int:
        for reg, value in (("SRC", target), ("LEN", 16), ("CTRL", 4 << 4 | 1)):
            sec.write(sec.block.register(reg).offset, 4, value)
        m.run_for(us=50)
        return sec.read(status.offset, 4)

    done, err_bus = status.field("DONE").mask, status.field("ERR_BUS").mask
    assert cmac() & (done | err_bus) == done
    tag = [sec.read(sec.block.register("MAC").offset + 4 * i, 4) for i in range(4)]
    sec.write(status.offset, 4, 0xFFFF)
    _flc(m).flip_bit(target + 8, 0)
    _flc(m).flip_bit(target + 8, 1)
    assert cmac() & (done | err_bus) == done | err_bus
    assert [sec.read(sec.block.register("MAC").offset + 4 * i, 4) for i in range(4)] == tag
