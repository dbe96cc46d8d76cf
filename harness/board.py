"""A board is data: memory regions, flash partitions, peripherals at their bases, IRQ wiring."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace

from harness.clock import VirtualClock
from harness.core.dwt import DWT_BLOCK
from harness.core.nvic import Nvic, scs_block
from harness.core.systick import SYSTICK_BLOCK
from harness.errors import BoardError
from harness.peripherals.base import Peripheral
from harness.peripherals.gpio import GPIO_BLOCK, Gpio
from harness.peripherals.timer import TIMER_BLOCK, Timer
from harness.regs.dsl import Block


@dataclass(frozen=True, slots=True)
class Region:
    name: str
    base: int
    size: int
    kind: str  # "flash" (read/execute for firmware) or "ram" (read/write/execute)
    doc: str = ""

    @property
    def end(self) -> int:
        return self.base + self.size

    def contains(self, address: int, length: int = 1) -> bool:
        return self.base <= address and address + length <= self.end


@dataclass(frozen=True, slots=True)
class Partition:
    name: str
    base: int
    size: int
    doc: str = ""


@dataclass(frozen=True, slots=True)
class PeripheralSpec:
    name: str
    kind: str
    base: int
    irq: int | None = None
    doc: str = ""


Factory = Callable[[PeripheralSpec, VirtualClock, Nvic], Peripheral]


def _gpio(spec: PeripheralSpec, clock: VirtualClock, _nvic: Nvic) -> Peripheral:
    return Gpio(spec.name, spec.base, clock)


def _timer(spec: PeripheralSpec, clock: VirtualClock, nvic: Nvic) -> Peripheral:
    if spec.irq is None:
        raise BoardError(f"timer {spec.name} needs an IRQ")
    return Timer(spec.name, spec.base, clock, nvic.line(spec.irq))


# kind -> (register layout, model factory): the one place a new peripheral kind is added.
PERIPHERAL_KINDS: dict[str, tuple[Block, Factory]] = {
    "gpio": (GPIO_BLOCK, _gpio),
    "timer": (TIMER_BLOCK, _timer),
}

SCS_BASE = 0xE000E000
SYSTICK_BASE = 0xE000E010
DWT_BASE = 0xE0001000


@dataclass(frozen=True, slots=True)
class Board:
    name: str
    cpu: str
    core_clock_hz: int
    regions: tuple[Region, ...]
    partitions: tuple[Partition, ...]
    peripherals: tuple[PeripheralSpec, ...]
    num_irqs: int
    doc: str = ""

    def __post_init__(self) -> None:
        spans = sorted([(r.base, r.end, r.name) for r in self.regions]
                       + [(p.base, p.base + PERIPHERAL_KINDS[p.kind][0].size, p.name)
                          for p in self.peripherals])  # fmt: skip
        for (_, end_a, a), (base_b, _, b) in itertools.pairwise(spans):
            if base_b < end_a:
                raise BoardError(f"board {self.name}: {b} overlaps {a}")
        for p in self.peripherals:
            if p.kind not in PERIPHERAL_KINDS:
                raise BoardError(f"board {self.name}: unknown peripheral kind {p.kind!r}")
            if p.irq is not None and not 0 <= p.irq < self.num_irqs:
                raise BoardError(f"board {self.name}: {p.name} IRQ {p.irq} out of range")

    def region(self, name: str) -> Region:
        for r in self.regions:
            if r.name == name:
                return r
        raise KeyError(f"board {self.name} has no region {name!r}")

    def partition(self, name: str) -> Partition:
        for p in self.partitions:
            if p.name == name:
                return p
        raise KeyError(f"board {self.name} has no flash partition {name!r}")

    def region_at(self, address: int, length: int = 1) -> Region | None:
        for r in self.regions:
            if r.contains(address, length):
                return r
        return None

    def with_clock(self, hz: int) -> Board:
        return replace(self, core_clock_hz=hz)

    def blocks(self) -> list[tuple[str, int, Block]]:
        """(instance name, base, layout) for every register block, core ones first."""
        core = [
            ("SCS", SCS_BASE, scs_block(self.num_irqs)),
            ("SysTick", SYSTICK_BASE, SYSTICK_BLOCK),
            ("DWT", DWT_BASE, DWT_BLOCK),
        ]
        return core + [(p.name, p.base, PERIPHERAL_KINDS[p.kind][0]) for p in self.peripherals]
