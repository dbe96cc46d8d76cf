"""SysTick: the Cortex-M 24-bit down-counter, clocked by the core clock.

Modelled: CSR (ENABLE, TICKINT, CLKSOURCE, COUNTFLAG read-to-clear), RVR, CVR (reads the
live count; any write clears it and COUNTFLAG), CALIB. Reaching zero sets COUNTFLAG and,
with TICKINT, pends exception 15; the period is RVR + 1 cycles exactly. Not modelled: the
external reference clock (CLKSOURCE = 0 counts the core clock as well, logged).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from harness.clock import VirtualClock
from harness.peripherals.base import Peripheral
from harness.regs.dsl import Access, Block, Field, Register

SYSTICK_BLOCK = Block(
    "SysTick",
    0x10,
    (
        Register("CSR", 0x0, (
            Field("ENABLE", 0), Field("TICKINT", 1), Field("CLKSOURCE", 2, reset=1),
            Field("COUNTFLAG", 16, 1, Access.RC),
        ), "Control and status"),
        Register("RVR", 0x4, (Field("RELOAD", 0, 24),), "Reload value"),
        Register("CVR", 0x8, (Field("CURRENT", 0, 24),), "Current value (write clears)"),
        Register("CALIB", 0xC, (Field("TENMS", 0, 24, Access.RO),
                                Field("SKEW", 30, 1, Access.RO, 1),
                                Field("NOREF", 31, 1, Access.RO, 1)), "Calibration"),
    ),
    "SysTick timer",
)  # fmt: skip


TICKINT = 1 << 1
COUNTFLAG = 1 << 16


class SysTick(Peripheral):
    block = SYSTICK_BLOCK
    extra_state: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str, base: int, clock: VirtualClock, pend: Callable[[], None]) -> None:
        super().__init__(name, base, clock)
        self._pend = pend
        self._zero = self.deadline(self._reached_zero)
        self.regs.on_read["CVR"] = self._read_cvr
        self.regs.on_write["CVR"] = lambda _i, _w, _n: self._restart()
        self.regs.on_write["CSR"] = self._write_csr

    @property
    def period(self) -> int:
        return self.regs["RVR"] + 1

    def _write_csr(self, _i: int, _written: int, new: int) -> None:
        if not new & 1:
            self._zero.disarm()
        elif self._zero.at is None:
            self._restart()

    def _restart(self) -> None:
        """Counter cleared (or enabled from zero): reload next cycle, reach zero RVR+1 later."""
        self.regs.set_field("CVR", "CURRENT", 0)
        self.regs.set_field("CSR", "COUNTFLAG", 0)
        if self.regs["CSR"] & 1 and self.regs["RVR"]:
            self._zero.arm_in(self.period)
        else:
            self._zero.disarm()

    def _read_cvr(self, _i: int) -> int:
        at = self._zero.at
        if at is None:
            return self.regs["CVR"]
        return (at - self.clock.cycles) % self.period

    def _reached_zero(self) -> None:
        # On every tick: plain bit operations rather than field look-ups.
        csr = self.regs.values["CSR"]
        csr[0] |= COUNTFLAG
        reload = self.regs.values["RVR"][0]
        if reload:
            self._zero.arm_at(self._zero.due + reload + 1)  # from when it was due: no drift
        if csr[0] & TICKINT:
            self._pend()
