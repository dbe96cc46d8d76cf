"""GPIO port: 16 pins whose outputs tests read and whose inputs tests drive.

Modelled: DIR (1 = output), IDR (pin levels: outputs read back, inputs as driven by the
test), ODR, BSRR (atomic set / reset; set wins when both are written for a pin, as on STM32),
TOGGLE, and an event log of every output change with its
virtual timestamp (at least the latest 100,000, `LOG_LIMIT`: long runs stay in flat memory).
Not modelled: pull-ups, drive strength, alternate functions, interrupts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from harness.clock import VirtualClock
from harness.peripherals.base import Peripheral, keep_recent
from harness.regs.dsl import Access, Block, Field, Register, word

PINS = 16

GPIO_BLOCK = Block(
    "GPIO",
    0x400,
    (
        Register("DIR", 0x00, (Field("DIR", 0, PINS),), "Direction: 1 = output"),
        Register("IDR", 0x04, (Field("IDR", 0, PINS, Access.RO),), "Input data (pin levels)"),
        Register("ODR", 0x08, (Field("ODR", 0, PINS),), "Output data"),
        Register("BSRR", 0x0C, (Field("BS", 0, PINS, Access.WO), Field("BR", 16, PINS, Access.WO)),
                 "Bit set (low half) / reset (high half)"),
        word("TOGGLE", 0x10, Access.WO, doc="Write 1 to toggle an output"),
    ),
    "General-purpose I/O port",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class PinEvent:
    cycle: int
    port: str
    pin: int
    level: int


class Gpio(Peripheral):
    block = GPIO_BLOCK
    extra_state: ClassVar[tuple[str, ...]] = ("inputs", "events", "_driven")

    def __init__(self, name: str, base: int, clock: VirtualClock) -> None:
        super().__init__(name, base, clock)
        self.inputs = 0
        self.events: list[PinEvent] = []  # at least the latest LOG_LIMIT changes
        self.regs.on_read["IDR"] = self._read_idr
        self.regs.on_write["ODR"] = lambda _i, _w, new: self._drive(new)
        self.regs.on_write["BSRR"] = self._write_bsrr
        self.regs.on_write["TOGGLE"] = lambda _i, w, _n: self._drive(self.regs["ODR"] ^ w)
        # ODR as last driven: a write to ODR itself has replaced the register's value by the
        # time its hook runs, so changes are found against this
        self._driven = 0

    def reset(self) -> None:
        super().reset()
        self.inputs = 0
        self.events = []
        self._driven = 0

    @property
    def outputs(self) -> int:
        """Levels of the pins configured as outputs."""
        return self.regs["ODR"] & self.regs["DIR"]

    def pin(self, n: int) -> int:
        return self._read_idr(0) >> n & 1

    def set_input(self, n: int, level: int) -> None:
        self.inputs = (self.inputs & ~(1 << n)) | ((level & 1) << n)

    def _read_idr(self, _i: int) -> int:
        direction = self.regs["DIR"]
        return (self.regs["ODR"] & direction) | (self.inputs & ~direction & 0xFFFF)

    def _write_bsrr(self, _i: int, written: int, _new: int) -> None:
        odr = self.regs["ODR"]
        self._drive((odr & ~(written >> 16)) | (written & 0xFFFF))

    def _drive(self, odr: int) -> None:
        old, self._driven = self._driven, odr & 0xFFFF
        self.regs["ODR"] = odr & 0xFFFF
        changed = (old ^ odr) & 0xFFFF
        cycle = self.clock.cycles
        for pin in range(PINS):
            if changed >> pin & 1:
                self.events.append(PinEvent(cycle, self.name, pin, odr >> pin & 1))
        keep_recent(self.events)
