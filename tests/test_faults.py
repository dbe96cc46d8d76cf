"""Faults stop the run with a FirmwareFault naming kind, PC, function and address."""

from __future__ import annotations

from pathlib import Path

import pytest
from irqtest import run, start

from harness import FirmwareFault, load_elf


@pytest.fixture(scope="module")
def elf(firmware: dict[str, Path]) -> Path:
    return firmware["irqtest"]


@pytest.mark.parametrize(
    ("scenario", "kind", "function", "address"),
    [
        ("FAULT_UNMAPPED_READ", "unmapped read", "fault_unmapped_read", 0x30000000),
        ("FAULT_FLASH_WRITE", "write to read-only memory", "fault_flash_write", 0x00010000),
        ("FAULT_UNDEFINED", "undefined instruction", "fault_undefined", None),
        ("FAULT_BAD_EXC_RETURN", "bad exception return (EXC_RETURN 0xFFFFFFF5)", "IRQ7_Handler",
         None),
        ("FAULT_STACK_OVERFLOW", "stack overflow", "recurse", None),
        ("FAULT_FETCH", "instruction fetch from non-executable memory", None, 0x40000000),
        ("FAULT_BUS_ERROR", "bus error (read of unassigned peripheral address)",
         "fault_bus_error", 0x40000800),
    ],
)  # fmt: skip
def test_fault_report(
    elf: Path, scenario: str, kind: str, function: str | None, address: int | None
) -> None:
    with pytest.raises(FirmwareFault) as info:
        run(elf, scenario, timeout_ms=20)
    fault = info.value
    assert fault.kind.startswith(kind)
    assert fault.function == function
    if address is not None:
        assert fault.address == address
    assert f"{fault.pc:08X}" in str(fault)
    if function:
        assert function in str(fault)


def test_fault_pc_is_the_faulting_instruction(elf: Path) -> None:
    with pytest.raises(FirmwareFault) as info:
        run(elf, "FAULT_UNMAPPED_READ")
    fault = info.value
    m_image_start = info.value.pc
    # The faulting load is inside the function and the core did not run past it.
    assert fault.function == "fault_unmapped_read"
    assert m_image_start % 2 == 0


def test_stack_overflow_address_is_just_below_sram(elf: Path) -> None:
    with pytest.raises(FirmwareFault) as info:
        run(elf, "FAULT_STACK_OVERFLOW", timeout_ms=20)
    assert info.value.address is not None
    assert 0x2000_0000 - 0x1000 <= info.value.address < 0x2000_0000


def test_unexpected_interrupt_stops_in_default_handler(elf: Path) -> None:
    with pytest.raises(FirmwareFault) as info:
        run(elf, "UNEXPECTED_IRQ")
    assert info.value.kind == "breakpoint (BKPT)"
    assert info.value.function == "Default_Handler"


@pytest.mark.parametrize(
    ("scenario", "value", "problem"),
    [("VECTOR_NO_THUMB", None, "Thumb bit clear: INVSTATE UsageFault"),
     ("VECTOR_ZERO", 0, "no handler: a zero entry")],
)  # fmt: skip
def test_bad_vector_stops_at_once_naming_exception_entry_and_value(
    elf: Path, scenario: str, value: int | None, problem: str
) -> None:
    with pytest.raises(FirmwareFault) as info:
        run(elf, scenario)
    fault = info.value
    assert fault.kind.startswith("bad vector for IRQ 5: the entry at ")
    assert problem in fault.kind
    assert fault.address is not None and fault.address % 512 == 0x54  # VTOR + 4 * (16 + 5)
    if value is None:  # the real handler's address with bit 0 cleared
        value = load_elf(elf).symbol("IRQ5_Handler").address
    assert f"holds 0x{value:08X}" in fault.kind
    assert fault.function == "broken_vector"  # stopped where the interrupt was taken


@pytest.mark.parametrize(
    ("scenario", "function", "offset"),
    [("FAULT_UNALIGNED_LDM", "fault_unaligned_ldm", 2),
     ("FAULT_UNALIGNED_STRD", "fault_unaligned_strd", 6)],
)  # fmt: skip
def test_unaligned_multiword_access_is_a_usage_fault(
    elf: Path, scenario: str, function: str, offset: int
) -> None:
    # ARMv7-M faults on LDM/STM/LDRD/STRD at an address that is not word-aligned; Unicorn
    # performs them, QEMU faults (found by the conformance sweep: gcc's `ldmia r2, {...}`).
    m = start(elf, scenario)
    words = m.image.symbol("unaligned_words").address
    with pytest.raises(FirmwareFault, match=r"unaligned access \(UsageFault UNALIGNED") as info:
        m.run_until(lambda: m.read_symbol("done") == 1, timeout_ms=5)
    assert info.value.function == function and info.value.address == words + offset
    assert m.read_memory(words, 16) == bytes.fromhex("11111111222222223333333344444444")
