"""The windowed watchdog (WDG) on its own: keys, exact expiry, the window, the early
warning, the configuration lock, hardware start, and snapshots."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest
from irq_line import Line

from harness.clock import VirtualClock
from harness.peripherals.watchdog import (
    KEY_SERVICE_1,
    KEY_SERVICE_2,
    KEY_START,
    KEY_UNLOCK,
    WATCHDOG_BLOCK,
    Watchdog,
    WatchdogFault,
)

STATUS = WATCHDOG_BLOCK.register("STATUS")
RUNNING, LOCKED, SEQ, LOCKERR, EARLY, LATE, WRONGKEY = (
    STATUS.field(n).mask for n in ("RUNNING", "LOCKED", "SEQ", "LOCKERR", "EARLY", "LATE",
                                   "WRONGKEY")
)  # fmt: skip
CFG = WATCHDOG_BLOCK.register("CFG")
EWI = WATCHDOG_BLOCK.register("EWI")
EWIF = WATCHDOG_BLOCK.register("EWIF").field("EWIF").mask
CORE_HZ = 48_000_000  # with the default 32 kHz watchdog clock: 1500 core cycles per LSI period


@dataclass
class Rig:
    clock: VirtualClock
    irq: Line
    resets: list[str]
    wdg: Watchdog


def rig(core_hz: int = CORE_HZ, clock_hz: int = 32_000, hardware_start: bool = False) -> Rig:
    clock, irq = VirtualClock(core_hz), Line()
    resets: list[str] = []
    wdg = Watchdog("WDG", 0x4000_2C00, clock, irq, resets.append, clock_hz, hardware_start)
    return Rig(clock, irq, resets, wdg)


def write(w: Watchdog, reg: str, value: int) -> None:
    w.write(WATCHDOG_BLOCK.register(reg).offset, 4, value)


def read(w: Watchdog, reg: str) -> int:
    return w.read(WATCHDOG_BLOCK.register(reg).offset, 4)


def key(w: Watchdog, *keys: int) -> None:
    for k in keys:
        write(w, "KEY", k)


def service(w: Watchdog) -> None:
    key(w, KEY_SERVICE_1, KEY_SERVICE_2)


def start(w: Watchdog, timeout: int, *, window: int = 0, pr: int = 0, ewit: int = 0,
          ewie: int = 0) -> None:  # fmt: skip
    key(w, KEY_UNLOCK)
    write(w, "CFG", CFG.pack(TIMEOUT=timeout, WINDOW=window))
    write(w, "PRESCALER", pr)
    write(w, "EWI", EWI.pack(EWIT=ewit, EWIE=ewie))
    key(w, KEY_START)


def after(r: Rig, cycles: int) -> None:
    r.clock.advance_to(r.clock.cycles + cycles)


def test_reset_values_and_a_stopped_watchdog() -> None:
    r = rig()
    w = r.wdg
    assert read(w, "STATUS") == LOCKED
    assert read(w, "CFG") == 0xFFF and read(w, "PRESCALER") == 2 and read(w, "EWI") == 0
    assert read(w, "COUNT") == 0xFFF  # a stopped watchdog shows what it would start from
    key(w, KEY_UNLOCK)
    write(w, "CFG", CFG.pack(TIMEOUT=5))
    assert read(w, "KEY") == 0  # write-only
    r.clock.advance_to(10**9)
    assert r.resets == [] and not w.running and read(w, "COUNT") == 5
    assert w.expires_at is None and w.window_opens_at is None


@pytest.mark.parametrize(
    ("core_hz", "clock_hz", "pr", "timeout", "cycles"),
    [
        (CORE_HZ, 32_000, 0, 10, 15_000),  # 10 ticks of 1500 cycles
        (CORE_HZ, 32_000, 3, 100, 1_200_000),  # 100 ticks of 8 x 1500 cycles
        (80_000_000, 32_768, 0, 3, 7_325),  # 3 x 2441.40625 = 7324.22, rounded up
        (16_000_000, 32_768, 1, 1000, 976_563),  # 1000 x 976.5625 = 976562.5, rounded up
        (CORE_HZ, 32_000, 7, 0xFFF, 786_240_000),  # the longest: 16.38 s
    ],
)
def test_expiry_falls_at_the_exact_core_cycle(core_hz: int, clock_hz: int, pr: int,
                                              timeout: int, cycles: int) -> None:  # fmt: skip
    r = rig(core_hz, clock_hz)
    w = r.wdg
    r.clock.advance_to(1234)  # started at some cycle other than 0
    start(w, timeout, pr=pr)
    assert read(w, "STATUS") == RUNNING | LOCKED and read(w, "COUNT") == timeout
    assert w.expires_at == 1234 + cycles
    r.clock.advance_to(1234 + cycles - 1)
    assert r.resets == [] and read(w, "COUNT") == 1
    r.clock.advance_to(1234 + cycles)
    assert r.resets == ["watchdog"] and w.last_cause == "expired"
    assert w.faults == [WatchdogFault(1234 + cycles, "expired")]
    assert read(w, "STATUS") == RUNNING | LOCKED | LATE and read(w, "COUNT") == 0


def test_count_reads_live_tick_by_tick() -> None:
    r = rig(80_000_000, 32_768)
    w = r.wdg
    start(w, 4, pr=1)  # a tick is 2 x 2441.40625 = 4882.8125 core cycles
    edges = [4883, 9766, 14649, 19532]  # ceil(n x 4882.8125)
    assert w.tick_cycles * 4 == 19531.25
    seen = []
    for edge in edges:
        r.clock.advance_to(edge - 1)
        seen.append(read(w, "COUNT"))
        r.clock.advance_to(edge)
        seen.append(read(w, "COUNT"))
    assert seen == [4, 3, 3, 2, 2, 1, 1, 0]
    assert r.resets == ["watchdog"] and w.faults[0].cycle == 19532


def test_a_service_restarts_the_count() -> None:
    r = rig()
    w = r.wdg
    start(w, 10)  # expires after 15,000 cycles
    for _ in range(5):
        after(r, 14_999)
        assert read(w, "COUNT") == 1
        key(w, KEY_SERVICE_1)
        assert read(w, "STATUS") & SEQ and read(w, "COUNT") == 1  # not yet serviced
        key(w, KEY_SERVICE_2)
        assert not read(w, "STATUS") & SEQ and read(w, "COUNT") == 10
        assert w.expires_at == r.clock.cycles + 15_000
    assert r.resets == [] and r.clock.cycles == 5 * 14_999
    after(r, 15_000)
    assert r.resets == ["watchdog"] and w.faults == [WatchdogFault(6 * 15_000 - 5, "expired")]


def test_start_while_running_is_harmless() -> None:
    r = rig()
    w = r.wdg
    start(w, 10)
    after(r, 6_000)
    key(w, KEY_START)
    assert r.resets == [] and read(w, "COUNT") == 6 and w.expires_at == 15_000


def test_a_service_inside_the_window_is_early() -> None:
    r = rig()
    w = r.wdg
    start(w, 10, window=4, pr=1)  # ticks of 3000 cycles: the window opens at 12,000
    assert w.window_opens_at == 12_000
    after(r, 11_999)
    assert read(w, "COUNT") == 7  # TIMEOUT - WINDOW = 6 is where it opens
    key(w, KEY_SERVICE_1)  # the first key is not timed ...
    assert r.resets == []
    key(w, KEY_SERVICE_2)  # ... the second is: one cycle too early
    assert r.resets == ["watchdog"] and w.last_cause == "early"
    assert w.faults == [WatchdogFault(11_999, "early")]
    assert read(w, "STATUS") == RUNNING | LOCKED | EARLY
    assert read(w, "COUNT") == 7  # frozen
    r.clock.advance_to(10**9)
    key(w, KEY_SERVICE_1, KEY_SERVICE_2)
    assert r.resets == ["watchdog"]  # asks once; the machine resets it


def test_a_service_as_the_window_opens_is_on_time() -> None:
    r = rig()
    w = r.wdg
    start(w, 10, window=4, pr=1)
    after(r, 12_000)
    assert read(w, "COUNT") == 6
    service(w)
    assert r.resets == [] and w.window_opens_at == 24_000 and w.expires_at == 42_000
    after(r, 11_999)
    service(w)
    assert r.resets == ["watchdog"] and w.last_cause == "early"  # the window moved with it


def test_window_zero_allows_a_service_at_once() -> None:
    r = rig()
    w = r.wdg
    start(w, 10)
    service(w)
    after(r, 1)
    service(w)
    assert r.resets == [] and w.expires_at == 15_001


@pytest.mark.parametrize(
    "keys",
    [
        [0x1234],  # garbage
        [KEY_SERVICE_2],  # the second key first
        [KEY_SERVICE_2, KEY_SERVICE_1],
        [KEY_SERVICE_1, KEY_SERVICE_1],  # the sequence interrupted ...
        [KEY_SERVICE_1, KEY_START],
        [KEY_SERVICE_1, KEY_UNLOCK],
        [KEY_SERVICE_1, 0x0000],
        [KEY_SERVICE_1, KEY_SERVICE_2, KEY_SERVICE_2],  # ... or followed by a stray key
    ],
)
def test_a_wrong_key_requests_a_reset(keys: list[int]) -> None:
    r = rig()
    w = r.wdg
    start(w, 10)
    after(r, 3_000)
    key(w, *keys)
    assert r.resets == ["watchdog"] and w.last_cause == "wrong key"
    assert w.faults == [WatchdogFault(3_000, "wrong key")]
    assert read(w, "STATUS") == RUNNING | LOCKED | WRONGKEY
    assert w.tripped and w.expires_at is None
    r.clock.advance_to(10**9)
    assert r.resets == ["watchdog"]  # no expiry after the fault


def test_keys_as_half_words() -> None:
    r = rig()
    w = r.wdg
    start(w, 10)
    after(r, 3_000)
    w.write(0, 2, KEY_SERVICE_1)
    w.write(0, 2, KEY_SERVICE_2)
    assert r.resets == [] and w.expires_at == 18_000
    w.write(1, 1, KEY_SERVICE_1 >> 8)  # one byte of a key is no key
    assert r.resets == ["watchdog"] and w.last_cause == "wrong key"


def test_a_service_when_the_expiry_is_due_is_late() -> None:
    r = rig()
    w = r.wdg
    start(w, 10)
    r.clock.cycles = 15_002  # inside a translated block: the expiry event has not run yet
    service(w)
    assert r.resets == ["watchdog"] and w.faults == [WatchdogFault(15_000, "expired")]
    r.clock.advance_to(20_000)
    assert r.resets == ["watchdog"]


def test_service_keys_do_nothing_while_stopped(caplog: pytest.LogCaptureFixture) -> None:
    r = rig()
    w = r.wdg
    with caplog.at_level(logging.WARNING):
        key(w, KEY_SERVICE_2, 0x1234, KEY_SERVICE_1)
    assert r.resets == [] and read(w, "STATUS") == LOCKED
    assert "service key 0x5A5A ignored: the watchdog is not running" in caplog.text


def test_the_configuration_is_locked_before_unlock(caplog: pytest.LogCaptureFixture) -> None:
    r = rig()
    w = r.wdg
    with caplog.at_level(logging.WARNING):
        write(w, "CFG", CFG.pack(TIMEOUT=7))
    assert read(w, "CFG") == 0xFFF and read(w, "STATUS") == LOCKED | LOCKERR
    assert "WDG: CFG ignored: the configuration is locked: write the unlock key 0xC0DE" in (
        caplog.text
    )
    key(w, KEY_UNLOCK)
    assert read(w, "STATUS") == LOCKERR  # LOCKERR is sticky
    write(w, "CFG", CFG.pack(TIMEOUT=7, WINDOW=2))
    write(w, "PRESCALER", 5)
    write(w, "EWI", EWI.pack(EWIT=3, EWIE=1))
    assert (read(w, "CFG"), read(w, "PRESCALER"), read(w, "EWI")) == (0x2_0007, 5, 0x1_0003)
    key(w, 0x0000)  # any other key locks it again
    write(w, "PRESCALER", 1)
    assert read(w, "PRESCALER") == 5 and read(w, "STATUS") == LOCKED | LOCKERR
    w.reset()
    assert read(w, "STATUS") == LOCKED and read(w, "PRESCALER") == 2


def test_the_configuration_is_locked_after_start(caplog: pytest.LogCaptureFixture) -> None:
    r = rig()
    w = r.wdg
    start(w, 10)
    assert read(w, "STATUS") == RUNNING | LOCKED
    with caplog.at_level(logging.WARNING):
        key(w, KEY_UNLOCK)  # no reset, but no unlock either
        for reg in ("CFG", "PRESCALER", "EWI"):
            write(w, reg, 0)
    assert r.resets == [] and read(w, "STATUS") == RUNNING | LOCKED | LOCKERR
    assert (read(w, "CFG"), read(w, "PRESCALER"), read(w, "EWI")) == (10, 0, 0)
    assert caplog.text.count("the watchdog is running (only a reset stops it)") == 4
    assert "WDG: unlock key ignored" in caplog.text
    after(r, 15_000)
    assert r.resets == ["watchdog"]


def test_only_a_reset_stops_it() -> None:
    r = rig()
    w = r.wdg
    start(w, 10, ewit=2, ewie=1)
    after(r, 14_000)
    assert r.irq.level
    w.reset()
    assert not w.running and read(w, "STATUS") == LOCKED and not r.irq.level
    assert read(w, "CFG") == 0xFFF and read(w, "EWIF") == 0
    r.clock.advance_to(10**9)
    assert r.resets == []


def test_early_warning_timing_flag_and_irq() -> None:
    r = rig()
    w = r.wdg
    start(w, 10, ewit=3, ewie=1)  # at COUNT 3: 7 ticks of 1500 cycles
    r.clock.advance_to(10_499)
    assert read(w, "EWIF") == 0 and not r.irq.level and read(w, "COUNT") == 4
    r.clock.advance_to(10_500)
    assert read(w, "EWIF") == EWIF and r.irq.level and read(w, "COUNT") == 3
    write(w, "EWIF", 0)  # writing 0 clears nothing
    assert r.irq.level
    write(w, "EWIF", EWIF)
    assert read(w, "EWIF") == 0 and not r.irq.level
    service(w)  # at 10,500: the next warning 7 ticks later
    r.clock.advance_to(20_999)
    assert not r.irq.level
    r.clock.advance_to(21_000)
    assert r.irq.level and r.irq.changes == [True, False, True]
    assert r.resets == []


def test_early_warning_flag_without_its_interrupt() -> None:
    r = rig()
    w = r.wdg
    start(w, 10, ewit=1)
    after(r, 13_500)
    assert read(w, "EWIF") == EWIF and not r.irq.level and r.irq.changes == []


def test_no_early_warning_with_ewit_zero() -> None:
    r = rig()
    w = r.wdg
    start(w, 10, ewie=1)
    after(r, 14_999)
    assert read(w, "EWIF") == 0 and not r.irq.level


def test_an_early_warning_at_or_beyond_the_timeout_comes_at_once() -> None:
    r = rig()
    w = r.wdg
    start(w, 10, ewit=12, ewie=1)
    after(r, 0)
    assert r.irq.level and read(w, "COUNT") == 10


def test_hardware_start_runs_from_reset_with_the_reset_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    r = rig(hardware_start=True)
    w = r.wdg
    expiry = 4095 * 4 * 1500  # 0xFFF ticks at /4 of 32 kHz: 511.875 ms
    assert expiry == r.clock.cycles_for(ms=511.875)
    assert w.running and read(w, "STATUS") == RUNNING | LOCKED and w.expires_at == expiry
    with caplog.at_level(logging.WARNING):
        key(w, KEY_UNLOCK)
        write(w, "CFG", 10)
    assert read(w, "CFG") == 0xFFF and read(w, "STATUS") & LOCKERR
    key(w, KEY_START)  # firmware written for a software start still works
    after(r, 1_000_000)
    service(w)
    assert w.expires_at == 1_000_000 + expiry
    r.clock.advance_to(1_000_000 + expiry)
    assert r.resets == ["watchdog"] and w.last_cause == "expired"
    w.reset()  # at cycle 1,000,000 + expiry: running again, from there
    assert w.running and w.expires_at == 1_000_000 + 2 * expiry and not w.tripped


def test_a_machine_that_resets_at_once() -> None:
    """The machine's request_reset resets every peripheral before it returns."""
    clock, irq = VirtualClock(CORE_HZ), Line()
    causes: list[str] = []

    def request_reset(cause: str) -> None:
        causes.append(cause)
        w.reset()

    w = Watchdog("WDG", 0x4000_2C00, clock, irq, request_reset, hardware_start=True)
    clock.advance_to(1_000)
    key(w, KEY_SERVICE_2)
    assert causes == ["watchdog"] and w.last_cause == "wrong key"
    assert read(w, "STATUS") == RUNNING | LOCKED and w.expires_at == 1_000 + 4095 * 6000
    clock.advance_to(1_000 + 4095 * 6000)
    assert causes == ["watchdog"] * 2 and w.last_cause == "expired"
    assert [f.cause for f in w.faults] == ["wrong key", "expired"]  # kept across resets
    assert w.running and w.expires_at == 1_000 + 2 * 4095 * 6000


def test_snapshot_and_restore() -> None:
    r = rig(80_000_000, 32_768)
    w = r.wdg
    start(w, 20, window=5, pr=2, ewit=4, ewie=1)  # a tick is 4 x 2441.40625 = 9765.625 cycles
    after(r, 60_000)  # the window opened at 48,829
    key(w, KEY_SERVICE_1)
    saved = r.clock.state(), w.snapshot()
    assert read(w, "COUNT") == 14 and w.expires_at == 195_313  # ceil(20 x 9765.625)
    r.clock.advance_to(195_313)
    assert r.resets == ["watchdog"] and r.irq.level and w.tripped
    r.clock.restore(saved[0])
    w.restore(saved[1])
    assert r.clock.cycles == 60_000 and not r.irq.level and not w.tripped
    assert w.faults == [] and w.last_cause is None
    assert read(w, "COUNT") == 14 and read(w, "STATUS") == RUNNING | LOCKED | SEQ
    assert w.expires_at == 195_313
    key(w, KEY_SERVICE_2)  # the sequence goes on where it was
    assert w.expires_at == 60_000 + 195_313 and read(w, "COUNT") == 20
    r.clock.advance_to(60_000 + 156_250 - 1)  # the warning at 16 ticks: 156,250 cycles
    assert not r.irq.level
    r.clock.advance_to(60_000 + 156_250)
    assert r.irq.level
    r.clock.advance_to(10**9)
    assert r.resets == ["watchdog"] * 2 and w.faults == [WatchdogFault(255_313, "expired")]


def test_clock_hz_must_be_positive() -> None:
    with pytest.raises(ValueError, match="clock_hz must be positive"):
        rig(clock_hz=0)
