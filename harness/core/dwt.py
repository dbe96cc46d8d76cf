"""DWT cycle counter: CYCCNT counts core cycles (virtual time) while CTRL.CYCCNTENA is set.

Modelled: CTRL.CYCCNTENA, CYCCNT (read live, writable). Not modelled: comparators,
watchpoints, the other profiling counters (accepted and logged). Counting does not wait
for DEMCR.TRCENA.
"""

from __future__ import annotations

from typing import ClassVar

from harness.clock import VirtualClock
from harness.peripherals.base import Peripheral
from harness.regs.dsl import Block, Field, Register, word

DWT_BLOCK = Block(
    "DWT",
    0x1000,
    (
        Register("CTRL", 0x000, (Field("CYCCNTENA", 0), Field("NUMCOMP", 28, 4, reset=0)),
                 "Control"),
        word("CYCCNT", 0x004, doc="Cycle count"),
    ),
    "Data watchpoint and trace unit (cycle counter)",
)  # fmt: skip


class Dwt(Peripheral):
    block = DWT_BLOCK
    extra_state: ClassVar[tuple[str, ...]] = ("_origin",)

    def __init__(self, name: str, base: int, clock: VirtualClock) -> None:
        super().__init__(name, base, clock)
        self._origin = 0  # clock cycle at which CYCCNT was (virtually) zero
        self.regs.on_read["CYCCNT"] = lambda _i: self.cyccnt
        self.regs.on_write["CYCCNT"] = lambda _i, _w, new: self._set(new)
        self.regs.on_write["CTRL"] = lambda _i, _w, _n: self._set(self.regs["CYCCNT"])

    @property
    def counting(self) -> bool:
        return bool(self.regs["CTRL"] & 1)

    @property
    def cyccnt(self) -> int:
        if not self.counting:
            return self.regs["CYCCNT"]
        return (self.clock.cycles - self._origin) & 0xFFFFFFFF

    def _set(self, value: int) -> None:
        self.regs["CYCCNT"] = value
        self._origin = self.clock.cycles - value

    def reset(self) -> None:
        super().reset()
        self._origin = 0
