"""The native exception path (NVIC, SysTick and run loop in C) against the Python reference.

The Python models (core/nvic.py, core/systick.py, Machine's Python loop) are the
specification; `HARNESS_NATIVE=0` runs them. Here both are driven the same way: the NVIC's
decisions and register semantics on random states and operations (hypothesis), and whole
machines through every exception scenario of the irqtest firmware and the application, which
must end with the same registers, memory, NVIC state, cycle and idle counts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from irqtest import SCENARIOS, start

from harness import Machine
from harness.boards import ASILB_M4, ASILB_M4F
from harness.clock import VirtualClock
from harness.core import native
from harness.core.nvic import FIRST_IRQ, NMI, PENDSV, SVCALL, SYSTICK, Nvic
from harness.core.scs_native import NativeNvic, NativeScs
from harness.errors import FirmwareFault

NUM_IRQS = 40  # two ISER words, the second one partly implemented
SYSTEM = [NMI, 3, 4, 5, 6, SVCALL, 12, PENDSV, SYSTICK]
EXCEPTIONS = SYSTEM + [FIRST_IRQ + n for n in range(NUM_IRQS)]
priorities = st.sampled_from([p << 4 for p in range(16)])


def both() -> tuple[Nvic, NativeNvic]:
    python = Nvic("SCS", 0xE000E000, VirtualClock(1000), NUM_IRQS, lambda: None, lambda: None,
                  lambda: None)  # fmt: skip
    scs = NativeScs(native.library(), native.new_context(), NUM_IRQS)
    return python, NativeNvic("SCS", 0xE000E000, VirtualClock(1000), scs, lambda: None,
                              lambda: None)  # fmt: skip


def state(n: Nvic) -> tuple[Any, ...]:
    return n.enabled, n.pending, n.active, list(n.prio), n.lines, n.prigroup


REGISTERS = [(0x100, 2), (0x180, 2), (0x200, 2), (0x280, 2), (0x300, 2), (0x400, 10),
             (0xD04, 1), (0xD0C, 1), (0xD18, 3)]  # fmt: skip


def registers(n: Nvic) -> list[int]:
    return [n.read(base + 4 * i, 4) for base, count in REGISTERS for i in range(count)]


masks = st.tuples(st.integers(0, 1), priorities | st.just(0), st.integers(0, 1))
words = st.integers(0, 2**32 - 1)
operations = st.one_of(
    st.tuples(st.just("write"), st.sampled_from([0x100, 0x104, 0x180, 0x184, 0x200, 0x204,
                                                 0x280, 0x284]), words),
    st.tuples(st.just("write"), st.integers(0x400, 0x424).map(lambda a: a & ~3), words),
    st.tuples(st.just("write"), st.sampled_from([0xD18, 0xD1C, 0xD20]), words),
    st.tuples(st.just("write"), st.just(0xD04), st.sampled_from([1 << b for b in (25, 26, 27,
                                                                                28, 31)])),
    st.tuples(st.just("write"), st.just(0xF00), st.integers(0, 63)),
    st.tuples(st.just("write"), st.just(0xD0C), st.integers(0, 7).map(lambda g: 0x05FA0000
                                                                       | g << 8)),
    st.tuples(st.just("line"), st.integers(0, NUM_IRQS - 1), st.booleans()),
    st.tuples(st.just("pend"), st.sampled_from(EXCEPTIONS), st.just(0)),
    st.tuples(st.just("unpend"), st.sampled_from(EXCEPTIONS), st.just(0)),
    st.tuples(st.just("take"), masks, st.just(0)),
    st.tuples(st.just("return"), st.just(0), st.just(0)),
)


def apply(n: Nvic, op: tuple[str, Any, Any]) -> object:
    kind, a, b = op
    if kind == "write":
        n.write(a, 4, b)
    elif kind == "line":
        n.set_line(a, b)
    elif kind == "pend":
        n.pend(a)
    elif kind == "unpend":
        n.unpend(a)
    elif kind == "take":
        exc = n.exception_to_take(*a)
        if exc is not None:
            n.activate(exc)
        return exc
    elif kind == "return" and n.active:
        n.exception_returned()
    return None


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(EXCEPTIONS[1:]), priorities)),
    st.integers(0, 7),
    st.integers(0, (1 << NUM_IRQS) - 1),
    st.lists(st.sampled_from(EXCEPTIONS), unique=True, max_size=5),
    st.lists(st.sampled_from(EXCEPTIONS), unique=True),
    st.lists(masks, min_size=1, max_size=4),
    st.lists(operations, max_size=40),
)
def test_the_native_nvic_decides_as_the_python_one(
    prios: list[tuple[int, int]], prigroup: int, enabled: int, active: list[int],
    pending: list[int], mask_sets: list[tuple[int, int, int]],
    ops: list[tuple[str, Any, Any]],
) -> None:  # fmt: skip
    python, c = both()
    for n in (python, c):
        for exc, p in prios:
            n.prio[exc] = p
        n.prigroup, n.enabled, n.active = prigroup, enabled, list(active)
        n.pending = sum(1 << e for e in pending if e not in active)
    assert state(c) == state(python)
    for m in mask_sets:
        assert c.highest_pending() == python.highest_pending()
        assert c.execution_priority(*m) == python.execution_priority(*m)
        assert c.exception_to_take(*m) == python.exception_to_take(*m)
    for op in ops:
        assert apply(c, op) == apply(python, op), op
        assert state(c) == state(python), op
        assert registers(c) == registers(python), op
        assert c.has_pending() == python.has_pending()


def test_a_native_snapshot_keeps_the_priorities_not_a_view_of_them() -> None:
    _, c = both()
    c.prio[FIRST_IRQ + 1] = 0x40
    snap = c.snapshot()
    c.prio[FIRST_IRQ + 1] = 0x80
    c.active = [FIRST_IRQ + 1]
    c.restore(snap)
    assert c.prio[FIRST_IRQ + 1] == 0x40 and c.active == []


# ---- whole machines on both paths ----

CORE_REGS = ("r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "r12",
             "sp", "lr", "pc", "xpsr", "control", "primask", "basepri", "faultmask", "msp",
             "psp")  # fmt: skip


def fingerprint(m: Machine, outcome: object) -> dict[str, object]:
    nvic = m.nvic
    return {
        "outcome": outcome,
        "cycles": m.cycles,
        "idle": m.idle_cycles,
        "sleeping": m.sleeping,
        "regs": {r: m.cpu.reg(r) for r in CORE_REGS},
        "sram": [bytes(mem.data) for mem in m.cpu.memories("ram")],
        "nvic": (nvic.enabled, nvic.pending, nvic.active, list(nvic.prio), nvic.lines,
                 nvic.prigroup, dict((k, list(v)) for k, v in nvic.regs.values.items())),
        "systick": {k: list(v) for k, v in m.systick.regs.values.items()},
        "systick_cvr": m.systick.read(8, 4),
        "faults": list(m.faults_taken),
        "next_event": m.next_event_ns(),
    }


def on_both_paths(monkeypatch: pytest.MonkeyPatch, make: Callable[[], Machine],
                  drive: Callable[[Machine], None]) -> list[dict[str, object]]:  # fmt: skip
    prints = []
    for flag in ("0", "1"):
        monkeypatch.setenv("HARNESS_NATIVE", flag)
        m = make()
        assert (type(m.nvic) is NativeNvic) == (flag == "1")
        try:
            drive(m)
            outcome: object = None
        except FirmwareFault as fault:
            outcome = str(fault)
        prints.append(fingerprint(m, outcome))
    return prints


@pytest.mark.parametrize("faults", ["stop", "firmware"])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_exception_scenario_ends_the_same_on_both_paths(
    monkeypatch: pytest.MonkeyPatch, firmware: dict[str, Path], scenario: str, faults: str
) -> None:
    def drive(m: Machine) -> None:
        for _ in range(30):  # stops at many points on the way, as a test's polling does
            m.run_for(us=97)

    python, c = on_both_paths(monkeypatch, lambda: start(firmware["irqtest"], scenario, faults),
                              drive)  # fmt: skip
    assert c == python


@pytest.mark.parametrize("elf", ["app", "fputest", "uartlog"])
def test_firmware_runs_the_same_on_both_paths(
    monkeypatch: pytest.MonkeyPatch, firmware: dict[str, Path], elf: str
) -> None:
    def drive(m: Machine) -> None:
        m.run_for(ms=3)
        snap = m.snapshot()
        m.run_for(ms=4)
        m.restore(snap)  # a restored machine goes on exactly as the first time
        m.run_for(ms=4)
        m.run_for(ms=20)

    board = ASILB_M4F if elf == "fputest" else ASILB_M4
    python, c = on_both_paths(monkeypatch, lambda: Machine(firmware[elf], board=board), drive)
    assert c == python
