"""Exception model against the ARMv7-M Architecture Reference Manual (B1.5), with real firmware."""

from __future__ import annotations

from pathlib import Path

import pytest
from irqtest import SCENARIOS, run, start, trace, words

EXC_RETURN_THREAD_MSP = 0xFFFFFFF9
EXC_RETURN_THREAD_PSP = 0xFFFFFFFD
EXC_RETURN_HANDLER = 0xFFFFFFF1


@pytest.fixture(scope="module")
def elf(firmware: dict[str, Path]) -> Path:
    return firmware["irqtest"]


@pytest.fixture(scope="module")
def idle_sp(elf: Path) -> int:
    """Thread SP at the end of a scenario in which no exception happened."""
    return int(run(elf, "IDLE").read_symbol("sp_after"))


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        # IRQ2 (0x80) pends IRQ3 (0x40): higher priority preempts at once.
        ("PREEMPT", "23b"),
        # Equal or lower priority never preempts; it tail-chains after the handler.
        ("NO_PREEMPT_EQUAL", "2b3"),
        ("NO_PREEMPT_LOWER", "2b3"),
        # Four levels deep, unwinding innermost first.
        ("NESTING", "2345zyx"),
        # Released together: priority first (4 at 0x40), then lower exception number (2 < 3).
        ("TAIL_CHAIN", "t423"),
        # PRIMASK holds a pended IRQ off until CPSIE.
        ("PRIMASK", "tu2"),
        # BASEPRI=0x80 masks priority 0x80 but not 0x40.
        ("BASEPRI", "3t2"),
        # PRIGROUP=5: 0x40 and 0x50 share group priority, so no preemption ...
        ("PRIGROUP_NO_PREEMPT", "2b3"),
        # ... but subpriority still decides which pending one goes first.
        ("PRIGROUP_ORDER", "42"),
        ("SVC", "sSa"),
        # PendSV at the lowest priority runs when SysTick's handler has returned.
        ("PENDSV", "TtP"),
        # WFI wakes for an interrupt PRIMASK masks; it is taken only after CPSIE.
        ("WFI_PRIMASK", "wT"),
        # A level-sensitive line still asserted at return pends the IRQ again.
        ("LEVEL_REPEND", "TT"),
    ],
)
def test_order_of_handlers(elf: Path, idle_sp: int, scenario: str, expected: str) -> None:
    m = run(elf, scenario)
    assert trace(m) == expected
    assert m.nvic.active == []
    assert m.read_symbol("sp_after") == idle_sp, "thread SP not restored after the handlers"


def test_exc_return_values_for_thread_msp_and_nested_handler(elf: Path) -> None:
    m = run(elf, "NESTING")
    er = words(m, "exc_return")
    assert er[2] == EXC_RETURN_THREAD_MSP
    assert er[3] == er[4] == er[5] == EXC_RETURN_HANDLER


def test_active_bits_seen_by_a_nested_handler(elf: Path) -> None:
    m = run(elf, "NESTING")
    # IRQ4's handler reads IABR after IRQ5 preempted it and returned: 2, 3 and 4 active.
    assert words(m, "exc_return")[7] == 0b11100


def test_thread_on_process_stack(elf: Path) -> None:
    m = run(elf, "PSP_THREAD")
    er = words(m, "exc_return")
    assert er[2] == EXC_RETURN_THREAD_PSP
    assert er[3] == EXC_RETURN_HANDLER
    assert trace(m) == "23bt"
    assert m.read_symbol("control_after") == 0b10  # still SPSEL=1 after the return
    psp_top = m.image.symbol("process_stack").address + 1024
    assert m.read_symbol("psp_after") == m.read_symbol("sp_after")
    assert psp_top - 64 <= int(m.read_symbol("psp_after")) <= psp_top


def test_unprivileged_thread_enters_and_returns(elf: Path) -> None:
    m = run(elf, "UNPRIVILEGED")
    assert trace(m) == "S2t"
    er = words(m, "exc_return")
    assert er[0] == EXC_RETURN_THREAD_PSP  # SVC from unprivileged thread on PSP
    assert er[2] == EXC_RETURN_THREAD_PSP
    assert m.read_symbol("control_after") == 0b11  # nPRIV and SPSEL kept


def test_frame_contents_alignment_and_register_preservation(elf: Path) -> None:
    m = run(elf, "FRAME")
    sp_before = int(m.read_symbol("sp_before"))
    assert sp_before % 8 == 4, "scenario must start misaligned"
    frame = words(m, "frame")
    assert frame[:5] == [0xA0A0A0A0, 0xA1A1A1A1, 0xA2A2A2A2, 0xA3A3A3A3, 0xACACACAC]
    assert m.read_symbol("frame_sp") == (sp_before - 0x20) & ~7
    assert frame[7] & (1 << 9), "stacked xPSR bit 9 must record the realignment"
    assert frame[7] & (1 << 24), "stacked xPSR keeps the Thumb bit"
    assert m.image.function_at(frame[6]) == "frame_body", "return address inside the thread"
    assert words(m, "thread_regs") == frame[:5]
    assert m.read_symbol("sp_after") == sp_before


def test_sysresetreq_resets_the_machine(elf: Path) -> None:
    m = run(elf, "SYSRESET")
    assert m.read_symbol("boot_count") == 2  # .noinit survives the reset, like SRAM does
    assert trace(m) == "R"


def test_interrupt_semantics_are_deterministic(elf: Path) -> None:
    results = []
    for _ in range(2):
        m = run(elf, "NESTING")
        results.append((trace(m), m.cycles, words(m, "exc_return")))
    assert results[0] == results[1]


def test_scenario_table_matches_firmware() -> None:
    assert SCENARIOS["IDLE"] == 0
    assert len(SCENARIOS) == len(set(SCENARIOS.values()))


def test_pending_state_visible_to_python(elf: Path) -> None:
    m = start(elf, "IDLE")
    m.run_for(ms=1)
    m.nvic.prio[16 + 3] = 0x40
    m.nvic.enabled |= 1 << 3
    m.nvic.pend(16 + 3)
    m.run_for(us=10)
    assert trace(m) == "3"
    assert m.nvic.pending == 0
