"""NVIC and SCB: the ARMv7-M exception model (what is pending, what may preempt what).

Modelled: enable / pending / active / priority for system exceptions and external IRQs,
4 implemented priority bits, priority grouping (AIRCR.PRIGROUP), preemption by group
priority and selection by full priority then exception number, masking by PRIMASK /
BASEPRI / FAULTMASK, level-sensitive IRQ lines (re-pend on return while asserted),
ICSR pend bits for PendSV / SysTick / NMI, STIR, VTOR, AIRCR.SYSRESETREQ / VECTRESET.
SHCSR's fault enables and the fault status registers (CFSR, HFSR, BFAR, MMFAR): with
`Machine(faults="firmware")` the machine fills them and pends the fault (harness.core.faults).
Not modelled (accepted and logged): SCR sleep modes, CCR trap enables, SHCSR's active and
pending bits, MPU, FPU registers, late arrival.
The stacking itself is done by the CPU (harness.core.cpu / native.c).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from harness.clock import VirtualClock
from harness.peripherals.base import Peripheral
from harness.regs.dsl import Access, Block, Field, Register, word

NMI, HARDFAULT, MEMMANAGE, BUSFAULT, USAGEFAULT = 2, 3, 4, 5, 6
SVCALL, DEBUGMON, PENDSV, SYSTICK = 11, 12, 14, 15
FIRST_IRQ = 16
PRIORITY_BITS = 4
PRIORITY_MASK = (0xFF << (8 - PRIORITY_BITS)) & 0xFF
THREAD_PRIORITY = 256  # lower than any exception
CPUID_CORTEX_M4_R0P1 = 0x410FC241
VECTKEY, VECTKEY_STAT = 0x05FA, 0xFA05

RO, WO, RW, W1S, W1C = Access.RO, Access.WO, Access.RW, Access.W1S, Access.W1C


def _bytes_reg(name: str, offset: int, fields: tuple[str, str, str, str], doc: str) -> Register:
    return Register(name, offset, tuple(Field(f, 8 * i, 8) for i, f in enumerate(fields) if f), doc)


def scs_block(num_irqs: int) -> Block:
    words = (num_irqs + 31) // 32
    return Block(
        "SCS",
        0x1000,
        (
            Register("ICTR", 0x004, (Field("INTLINESNUM", 0, 4, RO, words - 1),),
                     "Interrupt controller type"),
            word("ISER", 0x100, W1S, doc="Interrupt set-enable", count=words),
            word("ICER", 0x180, W1C, doc="Interrupt clear-enable", count=words),
            word("ISPR", 0x200, W1S, doc="Interrupt set-pending", count=words),
            word("ICPR", 0x280, W1C, doc="Interrupt clear-pending", count=words),
            word("IABR", 0x300, RO, doc="Interrupt active bit", count=words),
            word("IPR", 0x400, RW, doc="Interrupt priority, one byte per IRQ",
                 count=(num_irqs + 3) // 4),
            word("CPUID", 0xD00, RO, CPUID_CORTEX_M4_R0P1, "CPUID base"),
            Register("ICSR", 0xD04, (
                Field("VECTACTIVE", 0, 9, RO), Field("RETTOBASE", 11, 1, RO),
                Field("VECTPENDING", 12, 9, RO), Field("ISRPENDING", 22, 1, RO),
                Field("PENDSTCLR", 25, 1, WO), Field("PENDSTSET", 26, 1, RW),
                Field("PENDSVCLR", 27, 1, WO), Field("PENDSVSET", 28, 1, RW),
                Field("NMIPENDSET", 31, 1, RW),
            ), "Interrupt control and state"),
            Register("VTOR", 0xD08, (Field("TBLOFF", 7, 25),), "Vector table offset"),
            Register("AIRCR", 0xD0C, (
                Field("VECTRESET", 0, 1, WO), Field("VECTCLRACTIVE", 1, 1, WO, modelled=False),
                Field("SYSRESETREQ", 2, 1, WO), Field("PRIGROUP", 8, 3),
                Field("ENDIANNESS", 15, 1, RO), Field("VECTKEY", 16, 16),
            ), "Application interrupt and reset control (writes need VECTKEY=0x05FA)"),
            Register("SCR", 0xD10, (
                Field("SLEEPONEXIT", 1, modelled=False), Field("SLEEPDEEP", 2, modelled=False),
                Field("SEVONPEND", 4, modelled=False),
            ), "System control"),
            Register("CCR", 0xD14, (
                Field("NONBASETHRDENA", 0, modelled=False),
                Field("USERSETMPEND", 1, modelled=False),
                Field("UNALIGN_TRP", 3, modelled=False),
                Field("DIV_0_TRP", 4, modelled=False),
                Field("BFHFNMIGN", 8, modelled=False), Field("STKALIGN", 9, 1, RO, 1),
            ), "Configuration and control"),
            _bytes_reg("SHPR1", 0xD18, ("PRI_4", "PRI_5", "PRI_6", ""), "System handler prio 1"),
            _bytes_reg("SHPR2", 0xD1C, ("", "", "", "PRI_11"), "System handler prio 2"),
            _bytes_reg("SHPR3", 0xD20, ("PRI_12", "", "PRI_14", "PRI_15"), "System handler prio 3"),
            Register("SHCSR", 0xD24, (
                Field("MEMFAULTENA", 16), Field("BUSFAULTENA", 17), Field("USGFAULTENA", 18),
            ), "System handler control and state (the fault enables)"),
            word("CFSR", 0xD28, W1C, doc="Configurable fault status: MMFSR, BFSR, UFSR"),
            word("HFSR", 0xD2C, W1C, doc="HardFault status"),
            word("MMFAR", 0xD34, doc="MemManage fault address"),
            word("BFAR", 0xD38, doc="BusFault address"),
            Register("DEMCR", 0xDFC, (Field("TRCENA", 24, modelled=False),),
                     "Debug exception and monitor control (the DWT counts regardless)"),
            Register("STIR", 0xF00, (Field("INTID", 0, 9, WO),), "Software trigger interrupt"),
        ),
        "System control space: NVIC and SCB (Cortex-M4)",
    )  # fmt: skip


class _Line:
    """A level-sensitive interrupt input of the NVIC."""

    __slots__ = ("_irq", "_nvic")

    def __init__(self, nvic: Nvic, irq: int) -> None:
        self._nvic = nvic
        self._irq = irq

    def set(self, level: bool) -> None:
        self._nvic.set_line(self._irq, level)

    def native_target(self) -> tuple[int, int] | None:
        """(address of the native NVIC state, IRQ) for native peripherals to set the line
        without Python; None with the Python NVIC."""
        address = self._nvic.native_address()
        return None if address is None else (address, self._irq)


class Nvic(Peripheral):
    extra_state: ClassVar[tuple[str, ...]] = (
        "enabled",
        "pending",
        "active",
        "prio",
        "lines",
        "prigroup",
    )

    def __init__(
        self,
        name: str,
        base: int,
        clock: VirtualClock,
        num_irqs: int,
        request_stop: Callable[[], None],
        request_reset: Callable[[], None],
        sync_returns: Callable[[], None],
    ) -> None:
        self.block = scs_block(num_irqs)  # type: ignore[misc]  # sized per board
        super().__init__(name, base, clock)
        self.num_irqs = num_irqs
        self._request_stop = request_stop
        self._request_reset = request_reset
        self._sync_returns = sync_returns
        self._init_state()
        r = self.regs
        for reg in ("ISER", "ICER", "ISPR", "ICPR", "IABR", "IPR", "ICSR", "SHPR1", "SHPR2",
                    "SHPR3", "AIRCR"):  # fmt: skip
            getter = getattr(self, f"_read_{reg}", None)
            if getter:
                r.on_read[reg] = getter
            setter = getattr(self, f"_write_{reg}", None)
            if setter:
                r.on_write[reg] = setter
        block = self.block
        self._icsr = block.register("ICSR")
        self._aircr = block.register("AIRCR")
        self._tbloff = block.register("VTOR").field("TBLOFF")
        intid = block.register("STIR").field("INTID")
        r.on_write["STIR"] = lambda _i, written, _n: self._trigger(intid.get(written))
        r.on_write["VTOR"] = lambda _i, _w, _n: None
        # System handler priorities: field PRI_<n> of SHPR1..3 is exception n's.
        self._shpr = {
            name: tuple((f, int(f.name.removeprefix("PRI_"))) for f in block.register(name).fields)
            for name in ("SHPR1", "SHPR2", "SHPR3")
        }

    def _init_state(self) -> None:
        self.enabled = 0  # bit n: IRQ n enabled
        self.pending = 0  # bit e: exception e pending
        self.active: list[int] = []  # nesting order, innermost last
        self.prio = [0] * (FIRST_IRQ + self.num_irqs)
        self.prio[1:4] = [-3, -2, -1]  # Reset, NMI, HardFault: fixed
        self.lines = 0  # bit n: IRQ line n asserted
        self.prigroup = 0

    def reset(self) -> None:
        super().reset()
        self._init_state()

    def read(self, offset: int, size: int) -> int:
        self._sync_returns()  # the core may have returned from handlers since it last stopped
        return super().read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        self._sync_returns()
        super().write(offset, size, value)

    # ---- used by peripherals and the CPU ----

    def line(self, irq: int) -> _Line:
        if not 0 <= irq < self.num_irqs:
            raise ValueError(f"IRQ {irq} out of range 0..{self.num_irqs - 1}")
        return _Line(self, irq)

    def set_line(self, irq: int, level: bool) -> None:
        bit = 1 << irq
        if level:
            self.lines |= bit
            self.pend(FIRST_IRQ + irq)
        else:
            self.lines &= ~bit

    def native_address(self) -> int | None:
        return None

    def has_pending(self) -> bool:
        return bool(self.pending)

    def _implemented(self, i: int, written: int) -> int:
        """The bits of word `i` of ISER/ISPR/... that name implemented IRQs (others RAZ/WI)."""
        return written & ((1 << max(0, min(32, self.num_irqs - 32 * i))) - 1)

    def _trigger(self, irq: int) -> None:
        self._pend_irqs(irq >> 5, 1 << (irq & 31))

    def _pend_irqs(self, i: int, written: int) -> None:
        for n in _set_bits(self._implemented(i, written)):
            self.pend(FIRST_IRQ + 32 * i + n)

    def pend(self, exc: int) -> None:
        if exc in self.active and exc >= FIRST_IRQ:
            # Level-sensitive: re-pended on return while still asserted (see exception_returned).
            if not self.lines >> (exc - FIRST_IRQ) & 1:
                self.pending |= 1 << exc
        else:
            self.pending |= 1 << exc
        self._request_stop()

    def unpend(self, exc: int) -> None:
        self.pending &= ~(1 << exc)

    @property
    def vtor(self) -> int:
        return self.regs["VTOR"] & self._tbloff.mask

    @vtor.setter
    def vtor(self, value: int) -> None:
        self.regs["VTOR"] = value & self._tbloff.mask

    def group_priority(self, priority: int) -> int:
        if priority < 0:
            return priority
        return priority & (0xFF << (self.prigroup + 1)) & 0xFF

    def execution_priority(self, primask: int, basepri: int, faultmask: int) -> int:
        current = THREAD_PRIORITY
        for exc in self.active:
            current = min(current, self.group_priority(self.prio[exc]))
        if basepri & PRIORITY_MASK:
            current = min(current, self.group_priority(basepri & PRIORITY_MASK))
        if primask & 1:
            current = min(current, 0)
        if faultmask & 1:
            current = min(current, -1)
        return current

    def highest_pending(self) -> int | None:
        best: tuple[int, int] | None = None
        bits = self.pending
        while bits:
            low = bits & -bits
            bits ^= low
            exc = low.bit_length() - 1
            if exc >= FIRST_IRQ and not self.enabled >> (exc - FIRST_IRQ) & 1:
                continue
            key = (self.prio[exc], exc)
            if best is None or key < best:
                best = key
        return best[1] if best else None

    def exception_to_take(self, primask: int, basepri: int, faultmask: int) -> int | None:
        """The pending exception that preempts the current execution priority, if any."""
        exc = self.highest_pending()
        if exc is None:
            return None
        if self.group_priority(self.prio[exc]) < self.execution_priority(
            primask, basepri, faultmask
        ):
            return exc
        return None

    def activate(self, exc: int) -> None:
        self.pending &= ~(1 << exc)
        self.active.append(exc)

    def exception_returned(self) -> None:
        exc = self.active.pop()
        if exc >= FIRST_IRQ and self.lines >> (exc - FIRST_IRQ) & 1:
            self.pending |= 1 << exc

    # ---- register views of that state ----

    def _bits(self, mask: int, index: int) -> int:
        return (mask >> (32 * index)) & 0xFFFFFFFF

    def _read_ISER(self, i: int) -> int:
        return self._bits(self.enabled, i)

    _read_ICER = _read_ISER

    def _write_ISER(self, i: int, written: int, _new: int) -> None:
        self.enabled |= self._implemented(i, written) << (32 * i)
        self._request_stop()

    def _write_ICER(self, i: int, written: int, _new: int) -> None:
        self.enabled &= ~(written << (32 * i))

    def _read_ISPR(self, i: int) -> int:
        return self._bits(self.pending >> FIRST_IRQ, i)

    _read_ICPR = _read_ISPR

    def _write_ISPR(self, i: int, written: int, _new: int) -> None:
        self._pend_irqs(i, written)

    def _write_ICPR(self, i: int, written: int, _new: int) -> None:
        for n in _set_bits(self._implemented(i, written)):
            irq = 32 * i + n
            self.unpend(FIRST_IRQ + irq)
            if self.lines >> irq & 1 and FIRST_IRQ + irq not in self.active:
                self.pending |= 1 << (FIRST_IRQ + irq)  # a level still asserted re-pends

    def _read_IABR(self, i: int) -> int:
        mask = sum(1 << (e - FIRST_IRQ) for e in self.active if e >= FIRST_IRQ)
        return self._bits(mask, i)

    def _read_IPR(self, i: int) -> int:
        base = FIRST_IRQ + 4 * i
        return sum(self.prio[base + k] << (8 * k) for k in range(4) if base + k < len(self.prio))

    def _write_IPR(self, i: int, _written: int, new: int) -> None:
        for k in range(4):
            if FIRST_IRQ + 4 * i + k < len(self.prio):
                self.prio[FIRST_IRQ + 4 * i + k] = (new >> (8 * k)) & PRIORITY_MASK
        self._request_stop()

    def _read_shpr(self, name: str) -> int:
        return sum(f.place(max(self.prio[exc], 0)) for f, exc in self._shpr[name])

    def _write_shpr(self, name: str, new: int) -> None:
        for f, exc in self._shpr[name]:
            self.prio[exc] = f.get(new) & PRIORITY_MASK
        self._request_stop()

    def _read_SHPR1(self, _i: int) -> int:
        return self._read_shpr("SHPR1")

    def _read_SHPR2(self, _i: int) -> int:
        return self._read_shpr("SHPR2")

    def _read_SHPR3(self, _i: int) -> int:
        return self._read_shpr("SHPR3")

    def _write_SHPR1(self, _i: int, _w: int, new: int) -> None:
        self._write_shpr("SHPR1", new)

    def _write_SHPR2(self, _i: int, _w: int, new: int) -> None:
        self._write_shpr("SHPR2", new)

    def _write_SHPR3(self, _i: int, _w: int, new: int) -> None:
        self._write_shpr("SHPR3", new)

    def _is_pending(self, exc: int) -> int:
        return self.pending >> exc & 1

    def _read_ICSR(self, _i: int) -> int:
        return self._icsr.pack(
            VECTACTIVE=self.active[-1] if self.active else 0,
            RETTOBASE=int(len(self.active) <= 1),
            VECTPENDING=self.highest_pending() or 0,
            ISRPENDING=int(self.pending >> FIRST_IRQ != 0),
            PENDSTSET=self._is_pending(SYSTICK),
            PENDSVSET=self._is_pending(PENDSV),
            NMIPENDSET=self._is_pending(NMI),
        )

    def _write_ICSR(self, _i: int, written: int, _new: int) -> None:
        for name, exc, action in (("PENDSTCLR", SYSTICK, self.unpend),
                                  ("PENDSTSET", SYSTICK, self.pend),
                                  ("PENDSVCLR", PENDSV, self.unpend),
                                  ("PENDSVSET", PENDSV, self.pend),
                                  ("NMIPENDSET", NMI, self.pend)):  # fmt: skip
            if self._icsr.field(name).get(written):
                action(exc)

    def _read_AIRCR(self, _i: int) -> int:
        # VECTKEY reads as its complement, VECTKEYSTAT
        return self._aircr.pack(VECTKEY=VECTKEY_STAT, PRIGROUP=self.prigroup)

    def _write_AIRCR(self, _i: int, written: int, _new: int) -> None:
        aircr = self._aircr
        if aircr.field("VECTKEY").get(written) != VECTKEY:
            return  # ignored without the key, as on hardware
        self.prigroup = aircr.field("PRIGROUP").get(written)
        if aircr.field("SYSRESETREQ").get(written) or aircr.field("VECTRESET").get(written):
            self._request_reset()
        self._request_stop()


def _set_bits(value: int) -> list[int]:
    return [n for n in range(32) if value >> n & 1]
