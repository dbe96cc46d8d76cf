"""ARMv7-M faults as the architecture reports them: which exception, which status bits.

The machine finds a fault (an unmapped access, an undefined instruction, a bad exception
return, an uncorrectable ECC word...) and describes it as a `Fault`: the configurable
exception it belongs to (MemManage, BusFault or UsageFault), its CFSR bit, and the faulting
address when the architecture records one (BFAR, MMFAR). `escalate` then decides, as ARMv7-M
B1.5.9 does, whether the configurable handler takes it, HardFault takes it (FORCED), or the
core locks up.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.core.nvic import BUSFAULT, HARDFAULT, MEMMANAGE, USAGEFAULT

# CFSR: MMFSR in bits 7:0, BFSR in 15:8, UFSR in 31:16.
IACCVIOL, DACCVIOL, MUNSTKERR, MSTKERR, MMARVALID = 1 << 0, 1 << 1, 1 << 3, 1 << 4, 1 << 7
IBUSERR, PRECISERR, IMPRECISERR, UNSTKERR, STKERR, BFARVALID = (
    1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12, 1 << 15)  # fmt: skip
UNDEFINSTR, INVSTATE, INVPC, NOCP, UNALIGNED, DIVBYZERO = (
    1 << 16, 1 << 17, 1 << 18, 1 << 19, 1 << 24, 1 << 25)  # fmt: skip
# HFSR
VECTTBL, FORCED, DEBUGEVT = 1 << 1, 1 << 30, 1 << 31

# SHCSR enable bits of the configurable faults
ENABLE_BIT = {MEMMANAGE: 1 << 16, BUSFAULT: 1 << 17, USAGEFAULT: 1 << 18}


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault as the firmware will see it, and as `FirmwareFault` names it."""

    kind: str  # what happened, in words
    exception: int  # MEMMANAGE, BUSFAULT, USAGEFAULT, or HARDFAULT for HardFault-only faults
    cfsr: int = 0  # CFSR bits (for HARDFAULT: none)
    hfsr: int = 0  # HFSR bits of a HardFault-only fault (VECTTBL, DEBUGEVT)
    address: int | None = None  # the faulting address, for the report
    far: bool = True  # the architecture records `address` in BFAR / MMFAR


@dataclass(frozen=True, slots=True)
class Decision:
    exception: int | None  # the exception to pend; None: lockup
    cfsr: int
    hfsr: int


def escalate(fault: Fault, shcsr: int, group_priority: int, execution_priority: int) -> Decision:
    """Who takes `fault` (ARMv7-M B1.5.9): its own handler when SHCSR enables it and its
    group priority preempts the current execution priority; else HardFault (HFSR.FORCED for
    a configurable fault); lockup when even HardFault cannot preempt (in HardFault or NMI,
    or with FAULTMASK set: execution priority -1 or lower)."""
    cfsr = fault.cfsr
    if fault.far and fault.address is not None:
        cfsr |= BFARVALID if fault.exception == BUSFAULT else MMARVALID if (
            fault.exception == MEMMANAGE) else 0  # fmt: skip
    if fault.exception != HARDFAULT:
        enabled = shcsr & ENABLE_BIT[fault.exception]
        if enabled and group_priority < execution_priority:
            return Decision(fault.exception, cfsr, 0)
        if execution_priority <= -1:
            return Decision(None, cfsr, 0)
        return Decision(HARDFAULT, cfsr, FORCED)
    if execution_priority <= -1:
        return Decision(None, cfsr, fault.hfsr)
    return Decision(HARDFAULT, cfsr, fault.hfsr)
