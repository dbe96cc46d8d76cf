"""What the A/B bootloader (firmware_stubs/bootloader) leaves for tests to read: the boot
report it writes at the start of SRAM before it jumps, and the boot-state records in NVM.

The layouts are the C structs of firmware_stubs/boot/boot.h; this module reads them, it never
writes them. `report(machine)` is None until the bootloader has written a report this boot.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from harness.image import unpack_version
from harness.machine import Machine

REPORT_MAGIC = 0x54505242  # "BRPT"
RECORD_MAGIC = 0x43524241  # "ABRC"
RECORD_SIZE = 32
PAGE_SIZE = 0x4000
BANKS = ("A", "B")
STATES = {0: "none", 1: "confirmed", 2: "trial"}
VERDICTS = ("unchecked", "ok", "empty", "bad magic", "bad header", "wrong load address",
            "oversized", "ECC error", "bus error in CMAC", "bad CMAC", "old counter",
            "rejected", "bad vector table", "no key")  # fmt: skip
EVENTS = {0x01: "reverted", 0x02: "NVM write failed", 0x04: "factory state"}

_REPORT = struct.Struct("<IBBBBIIBBBBIIIIII")
_RECORD = struct.Struct("<IIBBBBI8sII")


def verdict_name(code: int) -> str:
    """A bank's verdict (BOOT_VERDICT_* of boot.h) by name."""
    return VERDICTS[code] if code < len(VERDICTS) else f"verdict {code}"


def _bank(value: int) -> str | None:
    return BANKS[value] if value < len(BANKS) else None


@dataclass(frozen=True, slots=True)
class BootReport:
    booted_bank: str | None
    state: str
    attempts: int
    reset_causes: int  # SYSCTL.RSTCAUSE as the bootloader found it
    stored_counter: int
    record_seq: int
    verdicts: tuple[str, str]  # per bank
    events: tuple[str, ...]
    reverted_bank: str | None
    versions: tuple[tuple[int, int, int] | None, ...]  # per bank; None: no readable header
    security_counters: tuple[int, int]
    ecc_faults: int  # flash reads the ECC refused (bus faults the bootloader survived)


def report(machine: Machine, address: int | None = None) -> BootReport | None:
    """The bootloader's report, or None when there is none (or it is damaged)."""
    base = machine.board.region("SRAM").base if address is None else address
    raw = machine.read_memory(base, _REPORT.size)
    (magic, booted, state, attempts, causes, counter, seq, verdict_a, verdict_b, events,
     reverted, version_a, version_b, counter_a, counter_b, ecc_faults,
     check) = _REPORT.unpack(raw)  # fmt: skip
    if magic != REPORT_MAGIC or check != magic ^ 0xFFFFFFFF:
        return None

    return BootReport(
        _bank(booted), STATES.get(state, f"state {state}"), attempts, causes, counter, seq,
        (verdict_name(verdict_a), verdict_name(verdict_b)),
        tuple(name for bit, name in EVENTS.items() if events & bit), _bank(reverted),
        tuple(unpack_version(v) if v else None for v in (version_a, version_b)),
        (counter_a, counter_b), ecc_faults,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class BootRecord:
    address: int
    seq: int
    confirmed: str | None
    trial: str | None
    attempts: int
    counter: int
    tag: bytes


def records(machine: Machine) -> list[BootRecord]:
    """Every valid record in the NVM record pages (magic and CRC-32 right), oldest first."""
    nvm = next(p for p in machine.board.partitions if p.name == "NVM")
    found = []
    for address in range(nvm.base, nvm.base + 2 * PAGE_SIZE, RECORD_SIZE):
        raw = machine.read_memory(address, RECORD_SIZE)
        magic, seq, confirmed, trial, attempts, _, counter, tag, _, crc = _RECORD.unpack(raw)
        if magic == RECORD_MAGIC and crc == zlib.crc32(raw[:28]):
            found.append(BootRecord(address, seq, _bank(confirmed), _bank(trial), attempts,
                                    counter, tag))  # fmt: skip
    return sorted(found, key=lambda r: r.seq)
