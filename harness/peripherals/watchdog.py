"""WDG: an independent watchdog with a service window, for an ASIL-B MCU.

One counter, clocked by its own oscillator (`clock_hz`, 32 kHz by default: an LSI), that the
firmware must service with a two-key sequence neither too late (the counter ran out) nor too
early (before the window opened). Either fault, or a wrong key, makes the watchdog ask the
machine for a system reset through `request_reset("watchdog")`; the model records which fault
it was in `last_cause` ("expired", "early" or "wrong key") and, with its cycle, in `faults`.

Registers (block "WDG", 0x400 bytes):

- KEY (+0x00, write-only, KEY[15:0]; bits 31:16 are ignored): `KEY_UNLOCK` (0xC0DE) unlocks
  the configuration registers, `KEY_START` (0x57A7) starts the watchdog, `KEY_SERVICE_1`
  (0xA5A5) then `KEY_SERVICE_2` (0x5A5A) service it. While stopped, any other value locks the
  configuration again (a service key also logs a warning: nothing is serviced). While running,
  the register accepts only the service sequence, plus `KEY_START` outside a sequence (a
  no-op: firmware may start a watchdog that `hardware_start` already started) and
  `KEY_UNLOCK` outside a sequence (ignored, and flagged as a locked write, as any attempt to
  configure a running watchdog). Any other value is a wrong key. This includes
  `KEY_SERVICE_2` without `KEY_SERVICE_1` before it, and anything but `KEY_SERVICE_2` right
  after `KEY_SERVICE_1`.
- CFG (+0x04, configuration): TIMEOUT[11:0] (reset 0xFFF), the ticks from a start or a
  service to expiry; WINDOW[27:16] (reset 0), the ticks after a start or a service during
  which servicing is early (0: no window). The service is timed at its second key. It is
  early while fewer than WINDOW ticks have passed, i.e. while COUNT > TIMEOUT - WINDOW. With
  WINDOW >= TIMEOUT every service is early (a warning at start).
- PRESCALER (+0x08, configuration): PR[2:0] (reset 2). A tick lasts 2**PR periods of the
  watchdog clock, so the tick rate is clock_hz / 2**PR (/1 to /128). With the reset values a
  32 kHz watchdog expires 4095 * 4 / 32 kHz = 511.875 ms after it starts.
- EWI (+0x0C, configuration): EWIT[11:0] (reset 0), the early warning comes when COUNT
  reaches EWIT, so EWIT ticks before expiry (0: no early warning; EWIT >= TIMEOUT: as soon
  as the watchdog starts or is serviced); EWIE[16], early-warning interrupt enable.
- STATUS (+0x10, read-only): RUNNING[0]; LOCKED[1] (reset 1), the configuration registers
  ignore writes (0 only between the unlock key and the start); SEQ[2], the first service key
  came and the second is awaited; LOCKERR[3], sticky: a write to a configuration register
  (or the unlock key) was ignored because the configuration was locked; and the fault that
  asked for the reset, exactly one of EARLY[4], LATE[5] (expired) and WRONGKEY[6].
- COUNT (+0x14, read-only): COUNT[11:0], the ticks left before expiry, computed from
  virtual time when read. It reads TIMEOUT while stopped and stays frozen after a fault.
- EWIF (+0x18): EWIF[0], write 1 to clear. Set when the early warning comes, whether or
  not EWIE is set. The IRQ line's level is EWIF AND EWIE.

Configuration registers (CFG, PRESCALER, EWI) change only between the unlock key and the
start. Any other write to them is ignored, sets STATUS.LOCKERR and logs a warning; none is
silent. Once started, the watchdog cannot be stopped; only `reset()` stops it, and then
the configuration is locked again. Built with `hardware_start=True` (an "always on" option
byte), the watchdog starts at every reset, including power-up, with the reset values
(TIMEOUT 0xFFF, PR 2, no window, no early warning). It is then never configurable.

Timing is exact in virtual time. The tick count restarts at each start and each service
(the prescaler is cleared on reload). Tick n after a reload at core cycle S falls at core
cycle S + ceil(n * 2**PR * clock.hz / clock_hz). Expiry comes at tick TIMEOUT, the early
warning at tick TIMEOUT - EWIT, and the window opens at tick WINDOW. A key written when the
expiry is already due (time inside a translated block runs ahead of the scheduled events)
finds the watchdog expired: the fault is "expired", at the cycle it was due.

After a fault the watchdog has asked for a reset and is tripped until `reset()`: it asks
only once, COUNT freezes and keys are ignored (logged). STATUS shows the fault until then.
A machine that resets at once clears it, so the reset cause belongs to the machine's
reset-cause register. `last_cause` and `faults` stay across resets.

Not modelled: the watchdog oscillator's inaccuracy and its phase against the core clock (the
ticks start exactly at the key write); the delay of register writes crossing into the slow
clock domain (STM32's PVU/RVU busy flags); stopping the counter in debug halt or low-power
modes; an early-warning interrupt instead of a reset (the warning always precedes a reset);
changing the configuration of a running watchdog.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar

from harness.clock import VirtualClock
from harness.peripherals.base import IrqLine, Peripheral
from harness.regs.dsl import Access, Block, Field, Register

log = logging.getLogger(__name__)

KEY_UNLOCK = 0xC0DE
KEY_START = 0x57A7
KEY_SERVICE_1 = 0xA5A5
KEY_SERVICE_2 = 0x5A5A

RESET_CAUSE = "watchdog"  # what request_reset is called with
EXPIRED, EARLY, WRONG_KEY = "expired", "early", "wrong key"  # last_cause

RO = Access.RO

WATCHDOG_BLOCK = Block(
    "WDG",
    0x400,
    (
        Register("KEY", 0x00, (
            Field("KEY", 0, 16, Access.WO, doc="Unlock 0xC0DE, start 0x57A7, service 0xA5A5 "
                                               "then 0x5A5A"),
        ), "Key"),
        Register("CFG", 0x04, (
            Field("TIMEOUT", 0, 12, reset=0xFFF, doc="Ticks from a start or service to expiry"),
            Field("WINDOW", 16, 12, doc="Ticks after a start or service during which a service "
                                        "is early (0: no window)"),
        ), "Configuration (writable after the unlock key, before the start)"),
        Register("PRESCALER", 0x08, (
            Field("PR", 0, 3, reset=2, doc="Tick = 2**PR periods of the watchdog clock"),
        ), "Prescaler (writable after the unlock key, before the start)"),
        Register("EWI", 0x0C, (
            Field("EWIT", 0, 12, doc="Early warning when COUNT reaches EWIT (0: none)"),
            Field("EWIE", 16, doc="Early-warning interrupt enable"),
        ), "Early warning (writable after the unlock key, before the start)"),
        Register("STATUS", 0x10, (
            Field("RUNNING", 0, 1, RO, doc="Started; only a reset stops it"),
            Field("LOCKED", 1, 1, RO, reset=1, doc="Configuration registers ignore writes"),
            Field("SEQ", 2, 1, RO, doc="First service key received, second awaited"),
            Field("LOCKERR", 3, 1, RO, doc="A write to the locked configuration was ignored"),
            Field("EARLY", 4, 1, RO, doc="Reset requested: serviced inside the window"),
            Field("LATE", 5, 1, RO, doc="Reset requested: the counter expired"),
            Field("WRONGKEY", 6, 1, RO, doc="Reset requested: a wrong key while running"),
        ), "Status"),
        Register("COUNT", 0x14, (
            Field("COUNT", 0, 12, RO, doc="Ticks left before expiry"),
        ), "Counter"),
        Register("EWIF", 0x18, (
            Field("EWIF", 0, 1, Access.W1C, doc="Early warning came (write 1 to clear)"),
        ), "Early-warning flag"),
    ),
    "Windowed watchdog",
)  # fmt: skip

_CFG = WATCHDOG_BLOCK.register("CFG")
_STATUS = WATCHDOG_BLOCK.register("STATUS")
_TIMEOUT, _WINDOW = (_CFG.field(n) for n in ("TIMEOUT", "WINDOW"))
_PR = WATCHDOG_BLOCK.register("PRESCALER").field("PR")
_EWIT, _EWIE = (WATCHDOG_BLOCK.register("EWI").field(n) for n in ("EWIT", "EWIE"))
_RUNNING, _LOCKED, _SEQ, _LOCKERR, _EARLY, _LATE, _WRONGKEY = (
    _STATUS.field(n).mask
    for n in ("RUNNING", "LOCKED", "SEQ", "LOCKERR", "EARLY", "LATE", "WRONGKEY")
)
_FAULT_BITS = {EXPIRED: _LATE, EARLY: _EARLY, WRONG_KEY: _WRONGKEY}
_KEY_OFFSET = WATCHDOG_BLOCK.register("KEY").offset
_CONFIG_OFFSETS = {WATCHDOG_BLOCK.register(n).offset: n for n in ("CFG", "PRESCALER", "EWI")}
_EWIF = WATCHDOG_BLOCK.register("EWIF").field("EWIF").mask


@dataclass(frozen=True, slots=True)
class WatchdogFault:
    cycle: int  # when the fault happened (an expiry: the cycle it was due)
    cause: str  # "expired", "early" or "wrong key"


class Watchdog(Peripheral):
    block = WATCHDOG_BLOCK
    extra_state: ClassVar[tuple[str, ...]] = ("_reload", "_frozen", "last_cause", "faults")

    def __init__(self, name: str, base: int, clock: VirtualClock, irq: IrqLine,
                 request_reset: Callable[[str], None], clock_hz: int = 32_000,
                 hardware_start: bool = False) -> None:  # fmt: skip
        super().__init__(name, base, clock)
        if clock_hz <= 0:
            raise ValueError(f"{name}: clock_hz must be positive, got {clock_hz}")
        self.clock_hz = clock_hz
        self.hardware_start = hardware_start
        self._irq = irq
        self._request_reset = request_reset
        self._reload = 0  # core cycle of the last start or service
        self._frozen: int | None = None  # COUNT once tripped
        self.last_cause: str | None = None
        self.faults: list[WatchdogFault] = []
        self._expiry = self.deadline(self._expired)
        self._warning = self.deadline(self._early_warning)
        self.regs.on_read["COUNT"] = lambda _i: self.count
        self.regs.on_write["EWIF"] = lambda _i, _w, _n: self.update_interrupts()
        self._power_up()

    # ---- what tests and the machine use ----

    @property
    def running(self) -> bool:
        return bool(self.regs["STATUS"] & _RUNNING)

    @property
    def locked(self) -> bool:
        return bool(self.regs["STATUS"] & _LOCKED)

    @property
    def tripped(self) -> bool:
        """A fault asked for a reset that has not happened yet."""
        return self._frozen is not None

    @property
    def tick_cycles(self) -> Fraction:
        """Core cycles per watchdog tick at the current prescaler (exact)."""
        return Fraction(self.clock.hz << self._prescaler(), self.clock_hz)

    @property
    def count(self) -> int:
        """Ticks left before expiry, now."""
        if self._frozen is not None:
            return self._frozen
        timeout = _TIMEOUT.get(self.regs["CFG"])
        if not self.running:
            return timeout
        elapsed = (
            (self.clock.cycles - self._reload)
            * self.clock_hz
            // (self.clock.hz << self._prescaler())
        )
        return max(0, timeout - elapsed)

    @property
    def expires_at(self) -> int | None:
        """The core cycle at which the counter expires (None: stopped or tripped)."""
        return self._expiry.at

    @property
    def window_opens_at(self) -> int | None:
        """The first core cycle at which a service is not early (None: stopped or tripped)."""
        if self._expiry.at is None:
            return None
        return self._tick_cycle(_WINDOW.get(self.regs["CFG"]))

    def update_interrupts(self) -> None:
        self._irq.set(bool(self.regs["EWIF"] & _EWIF and self.regs["EWI"] & _EWIE.mask))

    # ---- register side ----

    def reset(self) -> None:
        super().reset()
        self._reload = 0
        self._frozen = None
        self._power_up()

    def restore(self, state: Any) -> None:
        super().restore(state)
        self.update_interrupts()

    def write(self, offset: int, size: int, value: int) -> None:
        word = offset & ~3
        if word == _KEY_OFFSET:
            lanes = ((1 << (8 * size)) - 1) << (8 * (offset & 3))
            self._key((value << (8 * (offset & 3))) & lanes & 0xFFFF)
        elif word in _CONFIG_OFFSETS and self.locked:
            self._locked_write(_CONFIG_OFFSETS[word])
        else:
            self.regs.write(offset, value, size)

    def _power_up(self) -> None:
        self.update_interrupts()
        if self.hardware_start:
            self._start()

    def _status(self, set_: int = 0, clear: int = 0) -> None:
        self.regs["STATUS"] = (self.regs["STATUS"] & ~clear) | set_

    def _locked_write(self, what: str) -> None:
        self._status(set_=_LOCKERR)
        why = ("the watchdog is running (only a reset stops it)" if self.running
               else f"write the unlock key 0x{KEY_UNLOCK:04X} first")  # fmt: skip
        log.warning("%s: %s ignored: the configuration is locked: %s", self.name, what, why)

    def _key(self, key: int) -> None:
        if self._expiry.at is not None and self._expiry.at <= self.clock.cycles:
            self._catch_up()  # the expiry is due, its event has not run yet
        if self.tripped:
            log.warning("%s: key 0x%04X ignored: the watchdog has asked for a reset (%s)",
                        self.name, key, self.last_cause)  # fmt: skip
        elif not self.running:
            self._key_stopped(key)
        elif self.regs["STATUS"] & _SEQ:
            if key == KEY_SERVICE_2:
                self._service()
            else:
                self._fault(WRONG_KEY, self.clock.cycles)
        elif key == KEY_SERVICE_1:
            self._status(set_=_SEQ)
        elif key == KEY_START:
            pass  # already running: harmless
        elif key == KEY_UNLOCK:
            self._locked_write("unlock key")
        else:
            self._fault(WRONG_KEY, self.clock.cycles)

    def _key_stopped(self, key: int) -> None:
        if key == KEY_UNLOCK:
            self._status(clear=_LOCKED)
        elif key == KEY_START:
            self._start()
        else:
            self._status(set_=_LOCKED)
            if key in (KEY_SERVICE_1, KEY_SERVICE_2):
                log.warning("%s: service key 0x%04X ignored: the watchdog is not running",
                            self.name, key)  # fmt: skip

    def _start(self) -> None:
        self._status(set_=_RUNNING | _LOCKED)
        cfg = self.regs["CFG"]
        timeout, window = _TIMEOUT.get(cfg), _WINDOW.get(cfg)
        if timeout == 0:
            log.warning("%s: started with TIMEOUT 0: it expires at once", self.name)
        elif window >= timeout:
            log.warning("%s: WINDOW %d >= TIMEOUT %d: every service will be early", self.name,
                        window, timeout)  # fmt: skip
        self._reload_at(self.clock.cycles)

    def _service(self) -> None:
        self._status(clear=_SEQ)
        now = self.clock.cycles
        if now < self._tick_cycle(_WINDOW.get(self.regs["CFG"])):
            self._fault(EARLY, now)
        else:
            self._reload_at(now)

    def _reload_at(self, cycle: int) -> None:
        self._reload = cycle
        timeout = _TIMEOUT.get(self.regs["CFG"])
        self._expiry.arm_at(self._tick_cycle(timeout))
        ewit = _EWIT.get(self.regs["EWI"])
        if ewit:
            self._warning.arm_at(self._tick_cycle(max(0, timeout - ewit)))
        else:
            self._warning.disarm()

    def _tick_cycle(self, ticks: int) -> int:
        """The core cycle of tick `ticks` after the last reload: rounded up to a whole one."""
        return self._reload - (-(ticks * self.clock.hz << self._prescaler()) // self.clock_hz)

    def _prescaler(self) -> int:
        return _PR.get(self.regs["PRESCALER"])

    def _catch_up(self) -> None:
        if self._warning.at is not None and self._warning.at <= self.clock.cycles:
            self._warning.disarm()
            self._early_warning()
        at = self._expiry.at
        assert at is not None
        self._fault(EXPIRED, at)

    def _early_warning(self) -> None:
        self.regs["EWIF"] = self.regs["EWIF"] | _EWIF
        self.update_interrupts()

    def _expired(self) -> None:
        self._fault(EXPIRED, self._expiry.due)

    def _fault(self, cause: str, cycle: int) -> None:
        self._frozen = 0 if cause == EXPIRED else self.count
        self._expiry.disarm()
        self._warning.disarm()
        self._status(set_=_FAULT_BITS[cause], clear=_SEQ)
        self.last_cause = cause
        self.faults.append(WatchdogFault(cycle, cause))
        log.info("%s: %s at cycle %d: requesting a reset", self.name, cause, cycle)
        self._request_reset(RESET_CAUSE)  # last: the machine may reset this model in it
