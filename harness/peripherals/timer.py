"""General-purpose timer: a prescaled up-counter with an update interrupt.

Modelled: CR1.CEN (count enable), CR1.OPM (one-pulse: stop after one update), PSC, ARR,
CNT (live value from virtual time), SR.UIF (write 1 to clear), DIER.UIE, and the IRQ line
level = UIF AND UIE. The update period is (PSC + 1) x (ARR + 1) core cycles. Not modelled:
capture/compare channels, down/centre counting, DMA requests (logged when touched).
"""

from __future__ import annotations

from typing import ClassVar

from harness.clock import VirtualClock
from harness.peripherals.base import IrqLine, Peripheral
from harness.regs.dsl import Access, Block, Field, Register

TIMER_BLOCK = Block(
    "TIM",
    0x400,
    (
        Register("CR1", 0x00, (Field("CEN", 0), Field("OPM", 3),
                               Field("DIR", 4, modelled=False)), "Control 1"),
        Register("DIER", 0x04, (Field("UIE", 0), Field("CC1IE", 1, modelled=False),
                                Field("UDE", 8, modelled=False)), "DMA/interrupt enable"),
        Register("SR", 0x08, (Field("UIF", 0, 1, Access.W1C),), "Status"),
        Register("CNT", 0x0C, (Field("CNT", 0, 16),), "Counter"),
        Register("PSC", 0x10, (Field("PSC", 0, 16),), "Prescaler"),
        Register("ARR", 0x14, (Field("ARR", 0, 16, reset=0xFFFF),), "Auto-reload"),
    ),
    "General-purpose timer",
)  # fmt: skip


class Timer(Peripheral):
    block = TIMER_BLOCK
    extra_state: ClassVar[tuple[str, ...]] = ("_started",)

    def __init__(self, name: str, base: int, clock: VirtualClock, irq: IrqLine) -> None:
        super().__init__(name, base, clock)
        self._irq = irq
        self._started = 0  # cycle at which CNT was last zero
        self._update = self.deadline(self._overflow)
        self.regs.on_write["CR1"] = lambda _i, _w, _n: self._control_written()
        self.regs.on_write["CNT"] = lambda _i, _w, _n: self._restart()
        self.regs.on_write["SR"] = lambda _i, _w, _n: self.update_interrupts()
        self.regs.on_write["DIER"] = lambda _i, _w, _n: self.update_interrupts()
        self.regs.on_read["CNT"] = self._read_cnt

    @property
    def tick(self) -> int:
        return self.regs["PSC"] + 1

    @property
    def period(self) -> int:
        return self.tick * (self.regs["ARR"] + 1)

    def update_interrupts(self) -> None:
        self._irq.set(bool(self.regs["SR"] & self.regs["DIER"] & 1))

    def _running(self) -> bool:
        return bool(self.regs["CR1"] & 1)

    def _control_written(self) -> None:
        if not self._running():
            if self._update.at is not None:
                self.regs["CNT"] = self._live_count()  # the counter freezes where it stopped
            self._update.disarm()
        elif self._update.at is None:
            self._restart()

    def _restart(self) -> None:
        if self._running():
            count = self.regs["CNT"]
            self._started = self.clock.cycles - count * self.tick
            self._update.arm_at(self._started + self.period)
        else:
            self._update.disarm()

    def _read_cnt(self, _i: int) -> int:
        return self.regs["CNT"] if self._update.at is None else self._live_count()

    def _live_count(self) -> int:
        return ((self.clock.cycles - self._started) // self.tick) % (self.regs["ARR"] + 1)

    def _overflow(self) -> None:
        self.regs.set_field("SR", "UIF", 1)
        self._started = self._update.due  # from when it was due: no drift
        if self.regs.get_field("CR1", "OPM"):
            self.regs.set_field("CR1", "CEN", 0)
            self.regs["CNT"] = 0
        else:
            self._update.arm_at(self._started + self.period)
        self.update_interrupts()
