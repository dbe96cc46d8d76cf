"""The A/B part of `harness demo`: a secure boot through the bootloader, an update placed in the
other bank, its trial boot and its confirm, then a power cycle that stays on the new image."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from harness import boot, flashing, image
from harness.build import build
from harness.machine import Machine

DEMO_KEY = bytes(range(16))  # provisioned into SEC key slot 0 by the harness, then locked
BANKS = {"A": 0x0001_0000, "B": 0x0010_0000}


def _signed(elf: Path, bank: str, version: tuple[int, int, int], counter: int) -> bytes:
    return image.sign_firmware(elf, load_address=BANKS[bank] + image.HEADER_SIZE,
                               version=version, security_counter=counter, key=DEMO_KEY)


def _state(m: Machine) -> str:
    report = boot.report(m)
    if report is None:
        return "no boot report"
    record = boot.records(m)[-1] if boot.records(m) else None
    stored = f"stored counter {record.counter}" if record else "factory state"
    shown = zip("AB", report.versions, report.verdicts, strict=True)
    versions = "  ".join(f"{bank}: {'.'.join(map(str, v)) if v else '-'} {verdict}"
                         for bank, v, verdict in shown)  # fmt: skip
    banks = f"confirmed bank {record.confirmed}" if record else ""
    if record and record.trial:
        banks += f", trial bank {record.trial} ({record.attempts} of 3 attempts)"
    return (f"the bootloader booted bank {report.booted_bank} as {report.state}; "
            f"records: {banks}, {stored}\n      images  {versions}")


def run() -> None:
    elfs = build(["bootloader", "elc_a", "elc_b"])
    with tempfile.TemporaryDirectory() as tmp:
        bank_a = Path(tmp) / "bank_a.bin"
        bank_a.write_bytes(_signed(elfs["elc_a"], "A", (1, 0, 0), 1))
        m = Machine(elfs["bootloader"], images=[(bank_a, BANKS["A"])], faults="firmware")
    sec = m.peripheral("SEC")
    sec.provision_key(0, DEMO_KEY)  # type: ignore[attr-defined]
    sec.lock()  # type: ignore[attr-defined]
    start = time.perf_counter()

    print("\nThe A/B bootloader (firmware_stubs/bootloader) with the light controller as the")
    print("application, images signed with AES-CMAC (key in SEC slot 0, locked):")
    m.run_for(ms=300)
    print(f"  1. power on, secure boot of bank A 1.0.0:\n      {_state(m)}")

    update = _signed(elfs["elc_b"], "B", (1, 1, 0), 2)
    placed = flashing.install(m, update, "BANK_B")
    print(f"  2. update 1.1.0 installed into bank B while A runs: {placed.size:,} bytes, "
          f"{placed.erases} erase + {placed.programs:,} programs, "
          f"{placed.virtual_ms:.1f} ms")  # fmt: skip

    before = boot.report(m)  # a warm reset keeps SRAM: wait for the new report
    m.reset_pin()
    m.run_until(lambda: boot.report(m) != before, timeout_ms=100, poll_us=100)
    print(f"  3. reset, trial boot of the new image:\n      {_state(m)}")
    m.run_for(ms=300)
    print(f"  4. its start-up checks passed, it confirmed itself:\n      {_state(m)}")
    m.power_off()
    m.power_on()
    m.run_for(ms=300)
    print(f"  5. power cycle, bank B stays (A's counter 1 is now too old):\n      {_state(m)}")
    wall = time.perf_counter() - start

    print("\n  The bootloader's log on USART1:")
    for line in m.uart("USART1").text.splitlines():
        if line.startswith("boot"):
            print(f"    {line}")
    print(f"  {m.now_ms:.0f} ms of virtual time in {wall:.2f} s of wall time")
