"""Virtual time: exact periods, fast-forwarded sleep, bit-for-bit repeatable runs."""

from __future__ import annotations

import itertools
from pathlib import Path

from irqtest import start, words

from harness import Machine


def test_systick_fires_every_millisecond_exactly(firmware: dict[str, Path]) -> None:
    m = start(firmware["irqtest"], "SYSTICK_PERIOD")
    m.run_for(ms=20)
    stamps = words(m, "tick_cycles")  # DWT->CYCCNT read first thing in each handler
    assert len(stamps) == 16
    assert {b - a for a, b in itertools.pairwise(stamps)} == {120_000}
    assert m.read_symbol("ticks") == 19


def test_one_millisecond_task_and_control_timer(app_elf: Path) -> None:
    m = Machine(app_elf)
    m.run_for(ms=100)
    assert m.read_symbol("ms_ticks") == 99
    assert m.read_symbol("tim2_updates") == 999
    # TIM2 (priority 0x40) preempts the 1 ms task (SysTick, 0x80), which outlasts its period.
    assert int(m.read_symbol("tim2_preemptions")) >= 99


def test_idle_time_is_skipped_not_simulated(app_elf: Path) -> None:
    m = Machine(app_elf)
    m.run_for(ms=50)
    # The CPU sleeps in WFI between interrupts, most of the time: those cycles are skipped.
    assert m.sleeping
    assert m.idle_cycles + m.busy_cycles == m.cycles
    # The 1 ms task is ~3,000 CRC steps (~17k instructions), TIM2's handler a few dozen.
    assert 0.10 < m.busy_cycles / m.cycles < 0.20


def test_ten_second_run_is_identical_across_runs(app_elf: Path) -> None:
    logs = []
    for _ in range(2):
        m = Machine(app_elf)
        m.run_for(s=10)
        logs.append(
            (
                m.cycles,
                m.read_symbol("filter_state"),
                [e for p in ("GPIOA", "GPIOB") for e in m.gpio(p).events],
            )
        )
    assert logs[0] == logs[1]
    heartbeat = [e for e in logs[0][2] if e.port == "GPIOA" and e.pin == 0]
    assert len(heartbeat) == 19  # every 500 ms; the 20th falls just after 10 s
    assert {b.cycle - a.cycle for a, b in itertools.pairwise(heartbeat)} == {500 * 120_000}


def test_timer_peripheral_counts_and_one_shot(firmware: dict[str, Path]) -> None:
    m = start(firmware["irqtest"], "LEVEL_REPEND")
    m.run_for(ms=1)
    tim3 = m.peripheral("TIM3")
    assert m.read_symbol("level_entries") == 2
    assert tim3.regs["CR1"] & 1 == 0  # one-pulse mode stopped the counter
    assert tim3.read(0x0C, 4) == 0  # CNT


def test_timer_started_while_busy_interrupts_on_time(firmware: dict[str, Path]) -> None:
    m = start(firmware["irqtest"], "TIMER_WHILE_BUSY")
    m.run_until(lambda: m.read_symbol("done") == 1, timeout_ms=5)
    started = int(m.read_symbol("frame_sp"))
    stamps = words(m, "tick_cycles")[: int(m.read_symbol("level_entries"))]
    assert len(stamps) >= 3
    # Every 2,000 cycles, give or take the block-boundary latency (a few dozen cycles).
    assert all(0 <= s - (started + 2000 * (i + 1)) < 60 for i, s in enumerate(stamps))


def _outcome(m: Machine) -> tuple[object, ...]:
    names = ("ms_ticks", "tim2_updates", "tim2_preemptions", "main_wakeups", "filter_state")
    events = [e for p in ("GPIOA", "GPIOB") for e in m.gpio(p).events]
    return m.cycles, m.idle_cycles, [m.read_symbol(n) for n in names], events


def test_results_do_not_depend_on_how_time_is_sliced(app_elf: Path) -> None:
    whole = Machine(app_elf)
    whole.run_for(ms=12)
    reference = _outcome(whole)
    for slice_cycles in (1, 997, 12_000, 120_001):
        m = Machine(app_elf)
        end = 12 * 120_000
        while m.cycles < end:
            m.run_to_cycle(min(end, m.cycles + slice_cycles))
        assert _outcome(m) == reference, f"slices of {slice_cycles} cycles"


def test_one_cycle_per_instruction(firmware: dict[str, Path]) -> None:
    from irqtest import run

    m = run(firmware["irqtest"], "COUNT")
    # 100 NOPs + the second LDR + its ISB; then MOVS + 10 x (SUBS, BNE) + LDR + ISB.
    assert words(m, "counts") == [102, 1 + 20 + 2]
