"""Place a signed image in a flash bank through the flash controller, as a production flashing
tool does: unlock, erase the sectors the image needs, program it unit by unit, lock, read it
back. Every step is a real flash-controller operation in virtual time (the firmware keeps
running meanwhile), so a power cut armed on the controller (`FlashController.cut_power`) can
hit any of them; `install` then raises `PowerLost` and the test powers the ECU up again.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness import boot, image
from harness.errors import SimulationError
from harness.machine import Machine
from harness.peripherals.flash import (
    FLASH_BLOCK,
    KEY1,
    KEY2,
    OP_ERASE,
    OP_PROGRAM,
    UNIT,
    FlashController,
)

_CR, _SR = FLASH_BLOCK.register("CR"), FLASH_BLOCK.register("SR")
_ERRORS = ("PGSERR", "PGAERR", "WRPERR", "LOCKERR", "KEYERR")


class PowerLost(SimulationError):
    """The power went off while the image was being written."""


class FlashingError(SimulationError):
    """The flash controller refused an operation, or the bank does not read back the image."""


@dataclass(frozen=True, slots=True)
class Installed:
    bank: str
    address: int
    size: int  # image bytes (header, body, CMAC)
    erases: int
    programs: int
    virtual_ms: float


def flash_controller(machine: Machine) -> FlashController:
    found = [p for p in machine.peripherals.values() if isinstance(p, FlashController)]
    if not found:
        raise FlashingError(f"board {machine.board.name} has no flash controller")
    return found[0]


def install(machine: Machine, signed: bytes, bank: str = "BANK_B") -> Installed:
    """Write `signed` (made by `harness image sign`) at the start of partition `bank`, which
    must not be the bank the bootloader's report says the ECU runs from."""
    header = image.parse(signed, f"image for {bank}")
    partition = next((p for p in machine.board.partitions if p.name == bank), None)
    if partition is None:
        names = ", ".join(p.name for p in machine.board.partitions)
        raise FlashingError(f"board {machine.board.name} has no partition {bank!r} ({names})")
    if header.load_address != partition.base + image.HEADER_SIZE:
        raise FlashingError(f"the image is linked for 0x{header.load_address:08X}, but {bank} "
                            f"runs it at 0x{partition.base + image.HEADER_SIZE:08X}")  # fmt: skip
    running = boot.report(machine)
    if running is not None and f"BANK_{running.booted_bank}" == bank:
        raise FlashingError(f"{bank} holds the image the ECU runs: install into the other bank "
                            "(erasing it would leave the bootloader nothing confirmed to boot)")
    size = image.HEADER_SIZE + header.body_size + image.MAC_SIZE
    if size > partition.size:
        raise FlashingError(f"the image ({size} bytes) does not fit {bank} ({partition.size})")
    data = bytes(signed[:size]) + b"\xff" * (-size % UNIT)
    flc = flash_controller(machine)
    start = machine.now_ms
    _write(machine, flc, "KEY", KEY1)
    _write(machine, flc, "KEY", KEY2)
    first = partition.base - flc.flash_base
    sectors = [i for i, (offset, length) in enumerate(flc.sectors)
               if offset < first + len(data) and first < offset + length]  # fmt: skip
    for index in sectors:
        _operate(machine, flc, _CR.pack(OP=OP_ERASE, SECTOR=index, START=1),
                 flc.sector_cycles(flc.sectors[index][1]))
    programs = 0
    for offset in range(0, len(data), UNIT):
        unit = data[offset : offset + UNIT]
        if unit == b"\xff" * UNIT:
            continue  # erased already: programming ones changes nothing
        _write(machine, flc, "ADDR", partition.base + offset)
        _write(machine, flc, "DATA0", int.from_bytes(unit[:4], "little"))
        _write(machine, flc, "DATA1", int.from_bytes(unit[4:], "little"))
        _operate(machine, flc, _CR.pack(OP=OP_PROGRAM, START=1), flc.program_cycles)
        programs += 1
    _write(machine, flc, "CR", _CR.pack(LOCK=1))
    if flc.ecc_read(partition.base, size) != bytes(signed[:size]):
        raise FlashingError(f"{bank} does not read back the image just written")
    return Installed(bank, partition.base, size, len(sectors), programs, machine.now_ms - start)


def _write(machine: Machine, flc: FlashController, register: str, value: int) -> None:
    if not machine.powered:
        raise PowerLost(f"the power went off while writing {register}")
    flc.write(FLASH_BLOCK.register(register).offset, 4, value)


def _operate(machine: Machine, flc: FlashController, cr: int, cycles: int) -> None:
    """Start one operation and run the machine until it ends (`cycles` later) or the power
    does."""
    _write(machine, flc, "CR", cr)
    machine.run_until(lambda: not flc.busy or not machine.powered, timeout_ms=1000,
                      poll_us=cycles * 1_000_000 / machine.clock.hz)  # fmt: skip
    if not machine.powered:
        raise PowerLost(f"the power went off during flash operation {flc.operations - 1}")
    status = flc.read(_SR.offset, 4)
    failed = [name for name in _ERRORS if _SR.field(name).get(status)]
    if failed:
        raise FlashingError(f"the flash controller refused operation {flc.operations}: "
                            f"{', '.join(failed)} (SR=0x{status:08X})")  # fmt: skip
    flc.write(_SR.offset, 4, status)  # clear EOP
