"""Core speed: boot time, virtual MHz (idle and busy firmware), cost of one interrupt.

Run with `make bench`. Each figure is the median of several rounds; the interrupt cost is
also given as a ratio to the floor of the same machine (one Unicorn run ending in WFI,
no interrupt), measured in the same session, because absolute times drift between machines.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from irqtest import start

from harness import Machine

VIRTUAL_MS = 100


def _median(benchmark: Any) -> float:
    stats = getattr(benchmark, "stats", None)
    return float(stats.stats.median) if stats else float("nan")


def test_boot_to_main(benchmark: Any, firmware: dict[str, Path]) -> None:
    """Wall time from a new Machine (ELF load, memory map, reset) to main's first WFI."""

    def boot() -> Machine:
        m = Machine(firmware["app"])
        m.run_until(lambda: m.sleeping, timeout_ms=10, poll_us=1)
        return m

    m = benchmark.pedantic(boot, rounds=10, iterations=1)
    assert m.read_symbol("heartbeat_period_ms") == 500


FIRMWARES = {
    # (ELF, irqtest scenario or None): idle = 1 kHz SysTick and WFI; app = 1 ms task of
    # ~17k instructions + 10 kHz timer; busy = never sleeps.
    "idle": ("irqtest", "SYSTICK_PERIOD"),
    "app": ("app", None),
    "busy": ("busy", None),
}


@pytest.mark.parametrize("kind", list(FIRMWARES))
def test_virtual_mhz(benchmark: Any, firmware: dict[str, Path], kind: str) -> None:
    """Virtual cycles simulated per wall second over 100 ms of virtual time."""
    elf, scenario = FIRMWARES[kind]
    m = start(firmware[elf], scenario) if scenario else Machine(firmware[elf])
    m.run_for(ms=1)
    snap = m.snapshot()

    # the restore is set-up, not timed: at 1 kHz it would cost more than the ticks themselves
    benchmark.pedantic(lambda: m.run_for(ms=VIRTUAL_MS), setup=lambda: m.restore(snap),
                       rounds=5, iterations=1)  # fmt: skip
    cycles = VIRTUAL_MS * m.clock.hz // 1000
    median = _median(benchmark)
    benchmark.extra_info.update(
        virtual_mhz=round(cycles / median / 1e6, 1),
        real_time_factor=round(VIRTUAL_MS / 1000 / median, 2),
        busy_fraction=round(m.busy_cycles / m.cycles, 4),
    )


def _idle_machine(firmware: dict[str, Path]) -> Machine:
    m = start(firmware["irqtest"], "IDLE")
    m.run_until(lambda: m.read_symbol("done") == 1 and m.sleeping, timeout_ms=5)
    return m


def _floor_us(m: Machine, calls: int = 2000, batches: int = 7) -> float:
    """Median cost of one resume-to-WFI (the loop `wfi; b`) with nothing to deliver."""
    samples = []
    for _ in range(batches):
        t = time.perf_counter()
        for _ in range(calls):
            m.cpu.run()
        samples.append((time.perf_counter() - t) / calls * 1e6)
    return statistics.median(samples)


def test_floor_resume_to_wfi(benchmark: Any, firmware: dict[str, Path]) -> None:
    """Reference: the core resumes after WFI and runs to the next WFI; no interrupt."""
    m = _idle_machine(firmware)
    benchmark.pedantic(m.cpu.run, rounds=2000, iterations=10)


def test_interrupt_cost(benchmark: Any, firmware: dict[str, Path]) -> None:
    """SysTick every 1,200 cycles, ~50-instruction handler, CPU otherwise in WFI.

    Per interrupt: scheduler event, NVIC decision, exception entry (native), the handler,
    exception return (native), back to WFI, and the fast-forward to the next event.
    """
    m = start(firmware["irqtest"], "IRQ_BENCH")
    m.run_until(lambda: m.read_symbol("ticks") > 2, timeout_ms=5)
    snap = m.snapshot()
    snap_ticks = m.read_symbol("ticks")
    per_round = 10 * m.clock.hz // 1000 // 1200  # interrupts in 10 ms of virtual time

    benchmark.pedantic(lambda: m.run_for(ms=10), setup=lambda: m.restore(snap), rounds=7,
                       iterations=1)  # fmt: skip
    assert int(m.read_symbol("ticks")) - int(snap_ticks) == per_round
    us = _median(benchmark) / per_round * 1e6
    floor = _floor_us(_idle_machine(firmware))
    benchmark.extra_info.update(
        interrupts_per_round=per_round,
        us_per_interrupt=round(us, 2),
        floor_us_resume_to_wfi=round(floor, 2),
        ratio_to_floor=round(us / floor, 2),
    )


def test_snapshot_restore(benchmark: Any, firmware: dict[str, Path]) -> None:
    """Restoring a booted machine: what a fresh-per-test ECU costs."""
    m = Machine(firmware["app"])
    m.run_for(ms=5)
    snap = m.snapshot()
    benchmark.pedantic(lambda: m.restore(snap), rounds=200, iterations=1)
