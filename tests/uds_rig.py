"""The ECU the UDS tests talk to: the bootloader with the light controller confirmed in bank A,
on a CAN FD bus (500 kbit/s, 2 Mbit/s data), images signed with a test key, the security
access secret provisioned; and the images an update sends."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness import Machine, boot, image
from harness.network import Network
from harness.network.can import PythonNode
from harness.uds import TEST_SECURITY_SECRET

IMAGE_KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
BANK = {"A": 0x0001_0000, "B": 0x0010_0000}
BOOT_MS = 300


def sign(elf: Path, bank: str, version: tuple[int, int, int], counter: int,
         pad_to: int = 0) -> bytes:  # fmt: skip
    """A signed image for `bank`; `pad_to` pads the body with zeros to that many bytes."""
    load = BANK[bank] + image.HEADER_SIZE
    body = image.body_of(elf, load)
    body += bytes(max(0, pad_to - len(body)))
    return image.sign(body, load_address=load, version=version, security_counter=counter,
                      key=IMAGE_KEY)  # fmt: skip


@dataclass
class Rig:
    network: Network
    ecu: Machine
    spy: PythonNode  # every frame on can0


def make_rig(firmware: dict[str, Path], bank_a: Path, bitrate: int = 500_000,
             data_bitrate: int = 2_000_000) -> Rig:  # fmt: skip
    ecu = Machine(firmware["bootloader"], images=[(bank_a, BANK["A"])], faults="firmware")
    sec = ecu.peripheral("SEC")
    sec.provision_key(0, IMAGE_KEY)  # type: ignore[attr-defined]
    sec.provision_key(1, TEST_SECURITY_SECRET)  # type: ignore[attr-defined]
    sec.lock()  # type: ignore[attr-defined]
    net = Network()
    net.can_bus("can0", bitrate=bitrate, data_bitrate=data_bitrate)
    net.add_ecu("ELC", ecu)
    spy = PythonNode("spy", net.bus("can0"))
    net.run_for(ms=BOOT_MS)
    return Rig(net, ecu, spy)


def running(ecu: Machine) -> tuple[str, str]:
    """(bank, state) of what runs, after checking it is authentic (its CMAC verified here)."""
    report = boot.report(ecu)
    assert report is not None and report.booted_bank is not None, ecu.uart("USART1").text
    base = BANK[report.booted_bank]
    assert image.verify(ecu.read_memory(base, 960 * 1024), IMAGE_KEY)
    assert base <= ecu.cpu.pc < base + 960 * 1024
    records = boot.records(ecu)
    confirmed = records[-1].confirmed if records else report.booted_bank
    return report.booted_bank, "confirmed" if confirmed == report.booted_bank else "trial"
