"""The NVIC's choice of exception, checked as properties over random states (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.clock import VirtualClock
from harness.core.nvic import FIRST_IRQ, NMI, PENDSV, SVCALL, SYSTICK, Nvic

NUM_IRQS = 8
SYSTEM = [NMI, SVCALL, PENDSV, SYSTICK]
EXCEPTIONS = SYSTEM + [FIRST_IRQ + n for n in range(NUM_IRQS)]
priorities = st.sampled_from([p << 4 for p in range(16)])


def nvic() -> Nvic:
    return Nvic("SCS", 0xE000E000, VirtualClock(1000), NUM_IRQS, lambda: None, lambda: None,
                lambda: None)  # fmt: skip


@st.composite
def states(draw: st.DrawFn) -> tuple[Nvic, tuple[int, int, int]]:
    n = nvic()
    for exc in EXCEPTIONS:
        if exc != NMI:
            n.prio[exc] = draw(priorities)
    n.prigroup = draw(st.integers(0, 7))
    n.enabled = draw(st.integers(0, (1 << NUM_IRQS) - 1))
    for exc in draw(st.lists(st.sampled_from(EXCEPTIONS), unique=True, max_size=4)):
        n.active.append(exc)
    for exc in draw(st.lists(st.sampled_from(EXCEPTIONS), unique=True)):
        if exc not in n.active:
            n.pending |= 1 << exc
    masks = (draw(st.integers(0, 1)), draw(priorities | st.just(0)), draw(st.integers(0, 1)))
    return n, masks


def group(n: Nvic, priority: int) -> int:
    if priority < 0:
        return priority
    subbits = n.prigroup + 1
    return (priority >> subbits) << subbits


def execution_priority(n: Nvic, primask: int, basepri: int, faultmask: int) -> int:
    levels = [256] + [group(n, n.prio[e]) for e in n.active]
    if basepri:
        levels.append(group(n, basepri))
    if primask:
        levels.append(0)
    if faultmask:
        levels.append(-1)
    return min(levels)


def candidates(n: Nvic) -> list[int]:
    out = []
    for exc in EXCEPTIONS:
        enabled = exc < FIRST_IRQ or n.enabled >> (exc - FIRST_IRQ) & 1
        if n.pending >> exc & 1 and enabled:
            out.append(exc)
    return out


@settings(max_examples=400, deadline=None)
@given(states())
def test_taken_exception_preempts_and_is_the_most_urgent(
    state: tuple[Nvic, tuple[int, int, int]],
) -> None:
    n, masks = state
    taken = n.exception_to_take(*masks)
    pending = candidates(n)
    current = execution_priority(n, *masks)
    if taken is None:
        # Nothing pending, or the most urgent pending one cannot preempt.
        assert not pending or group(n, min(n.prio[e] for e in pending)) >= current
        return
    assert taken in pending
    assert group(n, n.prio[taken]) < current
    # Highest priority first, then the lowest exception number.
    assert (n.prio[taken], taken) == min((n.prio[e], e) for e in pending)


@settings(max_examples=200, deadline=None)
@given(states())
def test_primask_lets_only_nmi_through(state: tuple[Nvic, tuple[int, int, int]]) -> None:
    n, (_primask, basepri, faultmask) = state
    taken = n.exception_to_take(1, basepri, faultmask)
    assert taken is None or taken == NMI


@settings(max_examples=200, deadline=None)
@given(states(), priorities)
def test_raising_basepri_never_unmasks(
    state: tuple[Nvic, tuple[int, int, int]], tighter: int
) -> None:
    n, (primask, basepri, faultmask) = state
    if basepri == 0 or tighter == 0 or tighter > basepri:
        return
    if n.exception_to_take(primask, basepri, faultmask) is None:
        assert n.exception_to_take(primask, tighter, faultmask) is None


def test_level_line_repends_after_return_while_asserted() -> None:
    n = nvic()
    n.enabled = 1
    n.line(0).set(True)
    exc = n.exception_to_take(0, 0, 0)
    assert exc == FIRST_IRQ
    n.activate(exc)
    n.line(0).set(True)  # still asserted while the handler runs
    assert not n.pending
    n.exception_returned()
    assert n.pending == 1 << FIRST_IRQ
    n.unpend(FIRST_IRQ)
    n.line(0).set(False)
    assert n.exception_to_take(0, 0, 0) is None


def test_aircr_needs_the_key() -> None:
    n = nvic()
    n.write(0xD0C, 4, 5 << 8)  # no VECTKEY: ignored
    assert n.prigroup == 0
    n.write(0xD0C, 4, (0x05FA << 16) | (5 << 8))
    assert n.prigroup == 5
    assert n.read(0xD0C, 4) == (0xFA05 << 16) | (5 << 8)


def test_priority_registers_keep_four_bits_and_byte_access() -> None:
    n = nvic()
    n.write(0x400 + 2, 1, 0x5A)  # IPR byte for IRQ 2
    assert n.prio[FIRST_IRQ + 2] == 0x50
    assert n.read(0x400, 4) == 0x50 << 16
    n.write(0xD20 + 3, 1, 0xFF)  # SHPR3 byte: SysTick
    assert n.prio[SYSTICK] == 0xF0
