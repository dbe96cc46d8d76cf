"""The FPU's system registers: CPACR (in the SCB) and FPCCR / FPCAR / FPDSCR / MVFR0-1.

Modelled: CPACR.CP10/CP11 gate FP instructions (any FP instruction with them off, or on a core
without an FPU, is a NOCP UsageFault: the run stops with a FirmwareFault naming the
instruction); on a core without an FPU CPACR reads as zero whatever is written, which is how
firmware detects the FPU. The FP context is stacked on exception entry when CONTROL.FPCA is
set (26-word frame, EXC_RETURN 0xFFFFFFE1/E9/ED) and FPCAR says where, in native.c.
Not modelled (accepted, logged when written): lazy stacking (the context is always stacked
eagerly, so FPCCR.LSPACT stays 0 and LSPEN changes nothing), ASPEN = 0 (FP instructions
always mark a live context), FPDSCR's defaults for a new context, the FPCCR ready bits,
privileged-only access (CP10 = 0b01 admits unprivileged code too).
"""

from __future__ import annotations

from typing import Any

from harness.clock import VirtualClock
from harness.core.native import NativeContext
from harness.peripherals.base import Peripheral
from harness.regs.dsl import Access, Block, Field, Register

CPACR_BASE = 0xE000ED88
FPU_BASE = 0xE000EF34
MVFR0_M4F = 0x10110021  # single precision, square root, divide, rounding modes
MVFR1_M4F = 0x11000011  # FP fused MAC, half-precision conversion, default NaN, flush-to-zero

RO = Access.RO

CPACR_BLOCK = Block(
    "COPROC",
    0x4,
    (Register("CPACR", 0x0, (Field("CP10", 20, 2), Field("CP11", 22, 2)),
              "Coprocessor access control: 0b01 privileged, 0b11 full access (CP10 = CP11)"),),
    "SCB coprocessor access control (the FPU's enable)",
)  # fmt: skip

FPU_BLOCK = Block(
    "FPU",
    0x14,
    (
        Register("FPCCR", 0x0, (
            Field("LSPACT", 0, 1, RO), Field("USER", 1, modelled=False),
            Field("THREAD", 3, modelled=False), Field("HFRDY", 4, modelled=False),
            Field("MMRDY", 5, modelled=False), Field("BFRDY", 6, modelled=False),
            Field("MONRDY", 8, modelled=False), Field("LSPEN", 30, 1, reset=1, modelled=False),
            Field("ASPEN", 31, 1, reset=1, modelled=False),
        ), "FP context control (the context is stacked eagerly)"),
        Register("FPCAR", 0x4, (Field("ADDRESS", 3, 29, RO),),
                 "FP context address: S0 of the last extended frame"),
        Register("FPDSCR", 0x8, (
            Field("RMode", 22, 2, modelled=False), Field("FZ", 24, modelled=False),
            Field("DN", 25, modelled=False), Field("AHP", 26, modelled=False),
        ), "FP default status control"),
        Register("MVFR0", 0xC, (Field("VALUE", 0, 32, RO, MVFR0_M4F),), "Media and FP feature 0"),
        Register("MVFR1", 0x10, (Field("VALUE", 0, 32, RO, MVFR1_M4F),), "Media and FP feature 1"),
    ),
    "Floating-point unit system registers (Cortex-M4F)",
)  # fmt: skip


class Cpacr(Peripheral):
    """CPACR; `fpu=False` makes it read as zero (no coprocessors), as on a core without one."""

    block = CPACR_BLOCK

    def __init__(self, name: str, base: int, clock: VirtualClock, ctx: NativeContext,
                 fpu: bool) -> None:  # fmt: skip
        super().__init__(name, base, clock)
        self._ctx = ctx
        self._fpu = fpu
        self.regs.on_write["CPACR"] = lambda _i, _w, _n: self._apply()
        self._apply()

    def _apply(self) -> None:
        if not self._fpu:
            self.regs["CPACR"] = 0
        cp10, cp11 = self.regs.get_field("CPACR", "CP10"), self.regs.get_field("CPACR", "CP11")
        self._ctx.fp_enabled = int(cp10 == cp11 and cp10 in (1, 3))

    def reset(self) -> None:
        super().reset()
        self._apply()

    def restore(self, state: Any) -> None:
        super().restore(state)
        self._apply()


class FpuRegisters(Peripheral):
    """FPCCR, FPCAR (where native.c put the last FP context), FPDSCR, MVFR0/1."""

    block = FPU_BLOCK

    def __init__(self, name: str, base: int, clock: VirtualClock, ctx: NativeContext) -> None:
        super().__init__(name, base, clock)
        self._ctx = ctx
        self.regs.on_read["FPCAR"] = lambda _i: ctx.fpcar & ~7

    def reset(self) -> None:
        super().reset()
        self._ctx.fpcar = 0

    def snapshot(self) -> Any:
        return super().snapshot(), self._ctx.fpcar

    def restore(self, state: Any) -> None:
        registers, self._ctx.fpcar = state
        super().restore(registers)
