"""A board is data: memory regions, flash partitions, peripherals at their bases, IRQ wiring."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

from harness.core.dwt import DWT_BLOCK
from harness.core.fpu import CPACR_BASE, CPACR_BLOCK, FPU_BASE, FPU_BLOCK
from harness.core.nvic import scs_block
from harness.core.systick import SYSTICK_BLOCK
from harness.errors import BoardError
from harness.peripherals.registry import KINDS
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
    irqs: tuple[int, ...] = ()
    doc: str = ""
    params: tuple[tuple[str, int | str], ...] = ()  # (name, value): what its kind needs

    @property
    def param_dict(self) -> dict[str, int | str]:
        return dict(self.params)

    def irq_names(self) -> list[tuple[str, int]]:
        """(name, IRQ number): TIM2, or MCAN0_INT0 and MCAN0_INT1 for several lines."""
        if len(self.irqs) == 1:
            return [(self.name, self.irqs[0])]
        return [(f"{self.name}_INT{i}", irq) for i, irq in enumerate(self.irqs)]


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
    stack_region: str = "SRAM"  # where the initial SP must point; overflows run out below it
    fpu: bool = False  # a Cortex-M4F: FPv4-SP registers, FP context stacking, CPACR gating

    def __post_init__(self) -> None:
        spans = sorted([(r.base, r.end, r.name) for r in self.regions]
                       + [(p.base, p.base + KINDS[p.kind].block.size, p.name)
                          for p in self.peripherals if p.kind in KINDS])  # fmt: skip
        for (_, end_a, a), (base_b, _, b) in itertools.pairwise(spans):
            if base_b < end_a:
                raise BoardError(f"board {self.name}: {b} overlaps {a}")
        for p in self.peripherals:
            if p.kind not in KINDS:
                raise BoardError(f"board {self.name}: unknown peripheral kind {p.kind!r}")
            given, needed = set(p.param_dict), set(KINDS[p.kind].params)
            if given != needed:
                raise BoardError(f"board {self.name}: {p.name} ({p.kind}) takes parameters "
                                 f"{sorted(needed)}, not {sorted(given)}")  # fmt: skip
            for irq in p.irqs:
                if not 0 <= irq < self.num_irqs:
                    raise BoardError(f"board {self.name}: {p.name} IRQ {irq} out of range")

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
            ("COPROC", CPACR_BASE, CPACR_BLOCK),
            ("FPU", FPU_BASE, FPU_BLOCK),  # declared for both variants, as CMSIS does
        ]
        return core + [(p.name, p.base, KINDS[p.kind].block) for p in self.peripherals]
