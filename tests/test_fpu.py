"""The FPU: context stacking on the Cortex-M4F board, and FP refused where there is no FPU."""

from __future__ import annotations

from pathlib import Path

import pytest
from irqtest import run, words

from harness import FirmwareFault, FirmwareLoadError, Machine
from harness.boards import ASILB_M4, ASILB_M4F
from harness.core.fpu import CPACR_BASE, FPU_BASE, MVFR0_M4F

SCENARIOS = {"NESTED": 0, "SWITCH": 1, "NOCP": 2}
CP10_CP11 = 0xF << 20


def _start(elf: Path, scenario: str) -> Machine:
    m = Machine(elf, board=ASILB_M4F)
    m.write_symbol("scenario", SCENARIOS[scenario])
    return m


@pytest.fixture(scope="module")
def fputest(firmware: dict[str, Path]) -> Path:
    return firmware["fputest"]


def test_fp_work_in_main_survives_nested_handlers_that_use_fp(fputest: Path) -> None:
    m = _start(fputest, "NESTED")
    m.run_until(lambda: m.read_symbol("done") == 1, timeout_ms=100)
    # 40 rounds of FP work under ~1,000 timer interrupts and ~200 nested ones, each wrecking
    # S0-S15 and FPSCR: main's result is still the one computed with interrupts off.
    assert m.read_symbol("with_interrupts") == words(m, "reference")[0]
    assert int(m.read_symbol("timer_entries")) > 500
    assert int(m.read_symbol("nested_entries")) > 100
    assert m.read_symbol("handler_errors") == 0
    # Thread mode with a live FP context -> extended frame on the MSP; the nested handler
    # came from a handler that had used FP.
    assert m.read_symbol("timer_exc_return") == 0xFFFFFFE9
    assert m.read_symbol("nested_exc_return") == 0xFFFFFFE1
    # FPCAR points at S0 in the nested handler's frame, just above its stack pointer.
    fpcar, sp = int(m.read_symbol("fpcar_in_nested")), int(m.read_symbol("frame_in_nested"))
    assert 0x20 <= fpcar - sp <= 0x40 and fpcar % 8 == 0


def test_rtos_context_switch_keeps_each_threads_fp_state(fputest: Path) -> None:
    m = _start(fputest, "SWITCH")
    m.run_for(ms=20)
    assert words(m, "thread_bad") == [0, 0], "a thread saw its FP registers change"
    assert all(ok > 50 for ok in words(m, "thread_ok"))
    assert int(m.read_symbol("switches")) > 150


def test_fp_instruction_with_cpacr_off_is_a_nocp_fault(fputest: Path) -> None:
    m = _start(fputest, "NOCP")
    with pytest.raises(FirmwareFault, match=r"FPU disabled.*NOCP") as info:
        m.run_until(lambda: m.read_symbol("done") == 1, timeout_ms=10)
    assert info.value.function == "fp_without_cpacr"


def test_hard_float_elf_is_refused_on_the_board_without_fpu(fputest: Path) -> None:
    with pytest.raises(FirmwareLoadError, match=r"Tag_FP_arch VFPv4-D16.*ASILB-M4 has none"):
        Machine(fputest, board=ASILB_M4)


def test_fp_instruction_on_the_board_without_fpu_is_a_nocp_fault(
    firmware: dict[str, Path],
) -> None:
    with pytest.raises(FirmwareFault, match=r"without an FPU.*NOCP") as info:
        run(firmware["irqtest"], "FAULT_FP")
    assert info.value.function == "fault_fp"


@pytest.mark.parametrize(("board", "cpacr"), [(ASILB_M4, 0), (ASILB_M4F, CP10_CP11)])
def test_cpacr_tells_firmware_whether_there_is_an_fpu(
    firmware: dict[str, Path], board: object, cpacr: int
) -> None:
    m = Machine(firmware["app"], board=board)  # type: ignore[arg-type]
    m.write_memory(CPACR_BASE, CP10_CP11.to_bytes(4, "little"))
    assert m.read_u32(CPACR_BASE) == cpacr


def test_fpu_feature_registers(firmware: dict[str, Path]) -> None:
    m = Machine(firmware["app"], board=ASILB_M4F)
    assert m.read_u32(FPU_BASE + 0xC) == MVFR0_M4F
    assert m.read_u32(FPU_BASE) >> 30 == 0b11  # FPCCR: ASPEN and LSPEN set at reset
