"""System control: why the MCU last reset, as the firmware reads it.

RSTCAUSE holds a flag per reset cause: power-on, software (SCB.AIRCR.SYSRESETREQ or
VECTRESET), watchdog, the reset pin (`Machine.reset_pin()`), lockup. Flags accumulate across
warm resets until the firmware clears them (write 1 to clear), as on STM32's RCC_CSR: a
bootloader that counts watchdog resets reads them, then clears them. A power-on clears every
other flag. The flags are the machine's to set (`record`); the firmware can only clear them.

Not modelled: brown-out and low-power resets.
"""

from __future__ import annotations

from typing import ClassVar

from harness.clock import VirtualClock
from harness.peripherals.base import Peripheral
from harness.regs.dsl import Access, Block, Field, Register

CAUSES = ("power-on", "software", "watchdog", "pin", "lockup")

SYSCTL_BLOCK = Block(
    "SYSCTL",
    0x400,
    (
        Register("RSTCAUSE", 0x00, (
            Field("POR", 0, 1, Access.W1C, doc="Power-on reset (clears the other flags)"),
            Field("SW", 1, 1, Access.W1C, doc="Software reset: SYSRESETREQ or VECTRESET"),
            Field("WDG", 2, 1, Access.W1C, doc="Watchdog reset"),
            Field("PIN", 3, 1, Access.W1C, doc="Reset pin"),
            Field("LOCKUP", 4, 1, Access.W1C, doc="Core lockup (a fault the core cannot take "
                                                    "resets the chip)"),
        ), "Reset causes since the firmware last cleared them (write 1 to clear)"),
    ),
    "System control: reset causes",
)  # fmt: skip

_FIELDS = dict(zip(CAUSES, ("POR", "SW", "WDG", "PIN", "LOCKUP"), strict=True))
_RSTCAUSE = SYSCTL_BLOCK.register("RSTCAUSE")


class SysCtl(Peripheral):
    block = SYSCTL_BLOCK
    extra_state: ClassVar[tuple[str, ...]] = ("_causes",)

    def __init__(self, name: str, base: int, clock: VirtualClock) -> None:
        super().__init__(name, base, clock)
        self._causes = _RSTCAUSE.field("POR").mask  # the first power-on
        self.regs.on_write["RSTCAUSE"] = lambda _i, _w, _n: self._cleared()

    def record(self, cause: str) -> None:
        """The machine resets for `cause` (one of `CAUSES`); call before `reset()`."""
        if cause not in CAUSES:
            raise ValueError(f"unknown reset cause {cause!r}; causes: {', '.join(CAUSES)}")
        mask = _RSTCAUSE.field(_FIELDS[cause]).mask
        self._causes = mask if cause == "power-on" else self._causes | mask

    @property
    def causes(self) -> tuple[str, ...]:
        """The flags set now, by name."""
        value = self.regs["RSTCAUSE"]
        return tuple(c for c in CAUSES if value & _RSTCAUSE.field(_FIELDS[c]).mask)

    def reset(self) -> None:
        super().reset()
        self.regs["RSTCAUSE"] = self._causes  # a reset keeps its causes: they say why

    def _cleared(self) -> None:
        self._causes = self.regs["RSTCAUSE"]
