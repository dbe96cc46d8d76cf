"""What `harness flash` and `harness diag` talk to: an emulated ECU (the bundled bootloader, or
a firmware of the user's, with images in its banks) on a simulated CAN bus, or a real ECU
through a python-can interface (`--can0 INTERFACE:CHANNEL`, can-isotp's threaded stack)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import isotp
import udsoncan
from udsoncan.client import Client
from udsoncan.connections import PythonIsoTpConnection
from udsoncan.exceptions import (
    InvalidResponseException,
    NegativeResponseException,
    TimeoutException,
    UnexpectedResponseException,
)
from udsoncan.typing import ClientConfig

from harness import image
from harness.build import build
from harness.cli.run import open_bus
from harness.errors import HarnessError
from harness.machine import Machine
from harness.network import Network
from harness.uds import DIDS, TEST_SECURITY_SECRET, diag_ids, isotp_params, uds_client
from harness.uds.client import SECURITY_KEY_SLOT, isotp_address, security_algorithm

BANK_A = 0x0001_0000
UdsError = (TimeoutException, NegativeResponseException, InvalidResponseException,
            UnexpectedResponseException)  # fmt: skip
BOOT_MS = 300


def add_arguments(p: Any) -> None:
    p.add_argument("--firmware", help="the ECU's firmware at 0x0 (default: the bundled "
                                      "bootloader, or for diag the light controller)")  # fmt: skip
    p.add_argument("--app", help="a signed image in bank A (default: the bundled light "
                                 "controller, version 1.0.0, signed with --key)")  # fmt: skip
    p.add_argument("--key", help="the image key file (32 hex digits): provisioned into the "
                                 "emulated ECU's key slot 0")  # fmt: skip
    p.add_argument("--secret", default=TEST_SECURITY_SECRET.hex(),
                   help="security-access secret, 32 hex digits (default: the test secret)")
    p.add_argument("--classic", action="store_true", help="classic CAN frames, not CAN FD")
    p.add_argument("--bitrate", type=int, default=500_000, help="nominal bit rate")
    p.add_argument("--data-bitrate", type=int, default=2_000_000, help="CAN FD data bit rate")
    p.add_argument("--can0", metavar="INTERFACE:CHANNEL",
                   help="a real ECU through python-can (e.g. socketcan:can0) instead")


@dataclass
class Target:
    client: Client
    network: Network | None  # None: a real bus
    ecu: Machine | None


def _emulated_ecu(args: argparse.Namespace, default_firmware: str, folder: Path) -> Machine:
    name = "bootloader" if args.app else default_firmware  # an application under it
    firmware = args.firmware or build([name])[name]
    images: list[tuple[str | Path, int]] = []
    key = image.read_key(args.key) if args.key else None
    if name == "bootloader":
        if key is None:
            raise HarnessError("an ECU with the bootloader needs --key (the image key file)")
        if args.app:
            app = Path(args.app)
        else:
            app = folder / "bank_a.bin"
            app.write_bytes(image.sign_firmware(build(["elc_a"])["elc_a"],
                                                load_address=BANK_A + image.HEADER_SIZE,
                                                version=(1, 0, 0), security_counter=1, key=key))
        images.append((app, BANK_A))
    ecu = Machine(firmware, images=images, faults="firmware")
    sec: Any = ecu.peripheral("SEC")
    if key is not None:
        sec.provision_key(0, key)
    sec.provision_key(SECURITY_KEY_SLOT, image.parse_key(args.secret, "--secret"))
    sec.lock()
    return ecu


@contextlib.contextmanager
def target(args: argparse.Namespace, default_firmware: str) -> Iterator[Target]:
    """An opened udsoncan client on the ECU the arguments name; what the ECU refuses or never
    answers is a HarnessError (one line on the command line)."""
    if not getattr(args, "debug", False):  # udsoncan logs what the error line says anyway
        logging.getLogger("UdsClient").setLevel(logging.CRITICAL)
    try:
        with _target(args, default_firmware) as opened:
            yield opened
    except UdsError as err:
        raise HarnessError(f"the ECU: {err}") from err


@contextlib.contextmanager
def _target(args: argparse.Namespace, default_firmware: str) -> Iterator[Target]:
    fd = not args.classic
    if args.can0:
        bus = open_bus(args.can0)
        ids = diag_ids()
        stack = isotp.CanStack(bus, address=isotp_address(ids), params=isotp_params(fd))
        config = dict(udsoncan.configs.default_client_config)
        config.update(security_algo=security_algorithm, data_identifiers=DIDS,
                      security_algo_params=image.parse_key(args.secret, "--secret"))  # fmt: skip
        try:
            with Client(PythonIsoTpConnection(stack), config=cast(ClientConfig, config)) as c:
                yield Target(c, None, None)
        finally:
            bus.shutdown()
        return
    with tempfile.TemporaryDirectory() as tmp:
        ecu = _emulated_ecu(args, default_firmware, Path(tmp))
        network = Network()
        network.can_bus("can0", bitrate=args.bitrate, data_bitrate=args.data_bitrate)
        network.add_ecu("ECU", ecu)
        network.run_for(ms=BOOT_MS)
        with uds_client(network, fd=fd) as client:
            yield Target(client, network, ecu)

