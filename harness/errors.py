"""One exception tree for everything the harness reports."""

from __future__ import annotations


class HarnessError(Exception):
    """Base of every error the harness raises on purpose."""


class FirmwareLoadError(HarnessError):
    """An ELF file cannot be loaded: not an ELF, wrong architecture, or outside the memory map."""


class BoardError(HarnessError):
    """A board or register declaration is inconsistent."""


class BuildError(HarnessError):
    """The firmware or the native helper failed to build."""


class SimulationError(HarnessError):
    """The simulation was asked to do something it cannot (e.g. a timeout in virtual time)."""


class BusError(SimulationError):
    """A bus master's read met an error: an uncorrectable (double-bit) ECC error in flash."""


class VirtualTimeout(SimulationError):
    """`run_until` reached its virtual-time limit before the predicate held."""


class FirmwareFault(HarnessError):
    """The firmware faulted; the run stops here instead of hanging or looping in a handler.

    Attributes name where and why: ``kind`` (e.g. "unmapped read", "undefined instruction",
    "bad exception return", "stack overflow"), ``pc``, ``function`` (from the ELF symbols),
    ``address`` (the faulting data address, when there is one) and ``cycle`` (virtual time).
    """

    def __init__(
        self, kind: str, pc: int, function: str | None, address: int | None, cycle: int
    ) -> None:
        self.kind = kind
        self.pc = pc
        self.function = function
        self.address = address
        self.cycle = cycle
        where = f"pc=0x{pc:08X}" + (f" in {function}()" if function else "")
        at = f" at address 0x{address:08X}" if address is not None else ""
        super().__init__(f"firmware fault: {kind}{at}, {where}, cycle {cycle}")
