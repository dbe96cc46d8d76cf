"""Peripheral kinds: each kind's register layout and how its model is built from a board's
spec. The one place a new peripheral kind is added; boards only name kinds and parameters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness import nativelib
from harness.clock import VirtualClock
from harness.core.nvic import Nvic
from harness.errors import BoardError
from harness.peripherals.base import Peripheral
from harness.peripherals.flash import FLASH_BLOCK, FlashController
from harness.peripherals.gpio import GPIO_BLOCK, Gpio
from harness.peripherals.mcan.model import Mcan
from harness.peripherals.mcan.native import NativeMcan
from harness.peripherals.mcan.regs import MCAN_BLOCK
from harness.peripherals.security import SECURITY_BLOCK, SecurityUnit
from harness.peripherals.sysctl import SYSCTL_BLOCK, SysCtl
from harness.peripherals.timer import TIMER_BLOCK, Timer
from harness.peripherals.usart import USART_BLOCK, Usart
from harness.peripherals.watchdog import WATCHDOG_BLOCK, Watchdog
from harness.regs.dsl import Block

if TYPE_CHECKING:
    from harness.board import PeripheralSpec


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What a peripheral model may take from the machine it is built into."""

    clock: VirtualClock
    nvic: Nvic
    memory: Callable[[str], memoryview]  # a memory region's bytes, by region name
    request_reset: Callable[[str], None]  # a warm reset of the machine, with its cause
    # a bus master's view of memory (not peripherals): ValueError outside it; writes RAM only
    read_memory: Callable[[int, int], bytes]
    write_memory: Callable[[int, bytes], None]
    seed: int  # the machine's, for what real parts leave random
    code_changed: Callable[[int, int], None]  # flash or RAM bytes changed behind the core
    power_cut: Callable[[], None]  # the power goes (fault injection)
    partitions: tuple[tuple[str, int, int], ...]  # the board's (name, base, size)


Factory = Callable[["PeripheralSpec", BuildContext], Peripheral]


@dataclass(frozen=True, slots=True)
class Kind:
    block: Block
    build: Factory
    params: tuple[str, ...] = ()  # the parameters an instance must give


def _irqs(spec: PeripheralSpec, count: int) -> tuple[int, ...]:
    if len(spec.irqs) != count:
        raise BoardError(f"{spec.kind} {spec.name} needs {count} IRQ(s), has {len(spec.irqs)}")
    return spec.irqs


def _gpio(spec: PeripheralSpec, ctx: BuildContext) -> Peripheral:
    return Gpio(spec.name, spec.base, ctx.clock)


def _timer(spec: PeripheralSpec, ctx: BuildContext) -> Peripheral:
    (irq,) = _irqs(spec, 1)
    return Timer(spec.name, spec.base, ctx.clock, ctx.nvic.line(irq))


def _mcan(spec: PeripheralSpec, ctx: BuildContext) -> Peripheral:
    line0, line1 = _irqs(spec, 2)
    lines = (ctx.nvic.line(line0), ctx.nvic.line(line1))
    p: dict[str, Any] = spec.param_dict
    kind = NativeMcan if nativelib.enabled() and ctx.clock.counter_address() else Mcan
    return kind(spec.name, spec.base, ctx.clock, lines, ctx.memory(p["message_ram"]),
                p["kernel_clock_hz"])  # fmt: skip


def _usart(spec: PeripheralSpec, ctx: BuildContext) -> Peripheral:
    (irq,) = _irqs(spec, 1)
    clock_hz, break_bits = (spec.param_dict[name] for name in ("clock_hz", "break_bits"))
    if not isinstance(clock_hz, int) or not isinstance(break_bits, int):
        raise BoardError(f"{spec.name}: clock_hz and break_bits must be integers, not "
                         f"{clock_hz!r} and {break_bits!r}")  # fmt: skip
    return Usart(spec.name, spec.base, ctx.clock, ctx.nvic.line(irq), clock_hz, break_bits)


def _watchdog(spec: PeripheralSpec, ctx: BuildContext) -> Peripheral:
    (irq,) = _irqs(spec, 1)
    clock_hz = spec.param_dict["clock_hz"]
    if not isinstance(clock_hz, int):
        raise BoardError(f"{spec.name}: clock_hz must be an integer, not {clock_hz!r}")
    return Watchdog(spec.name, spec.base, ctx.clock, ctx.nvic.line(irq), ctx.request_reset,
                    clock_hz)  # fmt: skip


def _security(spec: PeripheralSpec, ctx: BuildContext) -> Peripheral:
    (irq,) = _irqs(spec, 1)
    return SecurityUnit(spec.name, spec.base, ctx.clock, ctx.nvic.line(irq), ctx.read_memory,
                        ctx.write_memory, seed=ctx.seed)  # fmt: skip


def _flash(spec: PeripheralSpec, ctx: BuildContext) -> Peripheral:
    """Sectors: each partition of the flash region is one sector if it is the first (the
    bootloader's), else 16 KB sectors; the first partition is write-protected."""
    (irq,) = _irqs(spec, 1)
    p: dict[str, Any] = spec.param_dict
    region = ctx.memory(p["region"])
    sector = p["sector_kb"] * 1024
    parts = sorted((base, size) for _name, base, size in ctx.partitions)
    if not parts:
        raise BoardError(f"{spec.name}: the board has no flash partitions to make sectors of")
    flash_base = parts[0][0]
    sectors = [(0, parts[0][1])] + [(off, sector) for off in
                                    range(parts[0][1], len(region), sector)]  # fmt: skip
    bank = len(region) // p["banks"]
    banks = [(offset, bank) for offset in range(0, len(region), bank)]
    return FlashController(spec.name, spec.base, ctx.clock, ctx.nvic.line(irq), region,
                           flash_base, sectors, [(0, parts[0][1])], ctx.code_changed,
                           ctx.power_cut, banks=banks)  # fmt: skip


KINDS: dict[str, Kind] = {
    "sysctl": Kind(SYSCTL_BLOCK, lambda spec, ctx: SysCtl(spec.name, spec.base, ctx.clock)),
    "gpio": Kind(GPIO_BLOCK, _gpio),
    "timer": Kind(TIMER_BLOCK, _timer),
    # message_ram: the memory region holding the message RAM; kernel_clock_hz: bit timing
    "mcan": Kind(MCAN_BLOCK, _mcan, ("kernel_clock_hz", "message_ram")),
    # clock_hz: the USART's kernel clock, one bit lasts BRR cycles of it; break_bits: the
    # length of the LIN break it sends
    "usart": Kind(USART_BLOCK, _usart, ("clock_hz", "break_bits")),
    # clock_hz: the watchdog's own oscillator
    "watchdog": Kind(WATCHDOG_BLOCK, _watchdog, ("clock_hz",)),
    "security": Kind(SECURITY_BLOCK, _security),
    # region: the flash memory region; sector_kb: the sectors after the bootloader's;
    # banks: equal physical banks (read-while-write works only across them)
    "flash": Kind(FLASH_BLOCK, _flash, ("region", "sector_kb", "banks")),
}
