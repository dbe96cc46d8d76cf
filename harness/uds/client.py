"""A udsoncan client for an ECU on the simulated network, configured as a tester would be for
the bundled light controller: its diagnostic IDs from the DBC, ISO-TP over CAN FD or classic
CAN, the security-access algorithm, and codecs for its DIDs."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, cast

import isotp
import udsoncan
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.cmac import CMAC
from udsoncan.client import Client
from udsoncan.typing import ClientConfig

from harness.dbc import Dbc
from harness.errors import HarnessError
from harness.network.network import Network
from harness.uds.connection import VirtualIsoTpConnection

SECURITY_KEY_SLOT = 1  # the ECU's security-access secret (firmware_stubs/uds/uds.h)
TEST_SECURITY_SECRET = bytes.fromhex("5ec2e7000102030405060708090a0b0c")


class _Version(udsoncan.DidCodec):
    """F189 / FD00 / FD01: major, minor, patch (16 bits); None when no image is readable."""

    def encode(self, *args: Any, **kwargs: Any) -> bytes:
        major, minor, patch = args[0]
        return struct.pack(">BBH", major, minor, patch)

    def decode(self, payload: bytes) -> tuple[int, int, int] | None:
        if payload == b"\xff" * 4:
            return None
        major, minor, patch = struct.unpack(">BBH", payload)
        return major, minor, patch

    def __len__(self) -> int:
        return 4


class _Banks(udsoncan.DidCodec):
    """FD02: the confirmed and the trial bank of the newest boot record."""

    def decode(self, payload: bytes) -> dict[str, str | None]:
        def bank(b: int) -> str | None:
            return "AB"[b] if b < 2 else None
        return {"confirmed": bank(payload[0]), "trial": bank(payload[1])}

    def __len__(self) -> int:
        return 2


class _BootState(udsoncan.DidCodec):
    """FD03: trial attempts, stored security counter, record sequence number."""

    def decode(self, payload: bytes) -> dict[str, int]:
        attempts, counter, seq = struct.unpack(">BII", payload)
        return {"attempts": attempts, "security_counter": counter, "record_seq": seq}

    def __len__(self) -> int:
        return 9


DIDS: dict[int, Any] = {
    0xF187: udsoncan.AsciiCodec(16),  # part number
    0xF189: _Version(),  # the software version of what answers
    0xF190: udsoncan.AsciiCodec(17),  # VIN (writable in the extended session)
    0xFD00: _Version(),  # bank A's image
    0xFD01: _Version(),  # bank B's image
    0xFD02: _Banks(),
    0xFD03: _BootState(),
    0xFD10: "B",  # AmbientLevel below which Auto lights (writable, security access)
    0x0101: ">I",  # DTC snapshots: uptime in ms
    0x0102: ">H",  # DTC snapshots: vehicle speed (raw, 0.01 km/h)
}


@dataclass(frozen=True, slots=True)
class DiagIds:
    request: int
    response: int
    functional: int | None


def diag_ids(dbc: Dbc | None = None, ecu: str | None = None) -> DiagIds:
    """The ECU's diagnostic request / response IDs from the DBC: DiagRequest_<ECU> and
    DiagResponse_<ECU> (`ecu` None: the DBC's only such pair), and DiagFunctionalRequest if
    the DBC has it."""
    db = dbc or Dbc.load()
    names = {m.name: m.frame_id for m in db.database.messages}
    if ecu is None:
        ecus = sorted(n.removeprefix("DiagRequest_") for n in names
                      if n.startswith("DiagRequest_"))  # fmt: skip
        if len(ecus) != 1:
            raise HarnessError(f"{db.source}: {len(ecus)} DiagRequest_<ECU> messages "
                               f"({', '.join(ecus) or 'none'}); say which ECU")  # fmt: skip
        ecu = ecus[0]
    missing = [n for n in (f"DiagRequest_{ecu}", f"DiagResponse_{ecu}") if n not in names]
    if missing:
        raise HarnessError(f"{db.source}: no {' or '.join(missing)}, the diagnostic IDs of "
                           f"{ecu}")  # fmt: skip
    return DiagIds(names[f"DiagRequest_{ecu}"], names[f"DiagResponse_{ecu}"],
                   names.get("DiagFunctionalRequest"))  # fmt: skip


def isotp_params(fd: bool = True, **overrides: Any) -> dict[str, Any]:
    """can-isotp parameters for the bundled ECU: CAN FD with 64-byte frames and bit-rate
    switch, or classic 8-byte frames; padding; messages up to 4,098 bytes (the bootloader's
    transfer blocks, sent with the escape sequence). Any can-isotp parameter overrides."""
    params: dict[str, Any] = {
        "stmin": 0, "blocksize": 8, "tx_padding": 0xCC, "max_frame_size": 8192,
        "tx_data_length": 64 if fd else 8, "can_fd": fd, "bitrate_switch": fd,
        "rx_flowcontrol_timeout": 1000, "rx_consecutive_frame_timeout": 1000,
    }  # fmt: skip
    params.update(overrides)
    return params


def security_key(secret: bytes, seed: bytes) -> bytes:
    """The key for a seed: the first len(seed) bytes of AES-CMAC(secret, seed)."""
    mac = CMAC(algorithms.AES(secret))
    mac.update(seed)
    return mac.finalize()[: len(seed)]


def security_algorithm(level: int, seed: bytes, params: Any) -> bytes:
    return security_key(params, seed)


def uds_client(network: Network, channel: str = "can0", *, fd: bool = True,
               ids: DiagIds | None = None, secret: bytes = TEST_SECURITY_SECRET,
               isotp: dict[str, Any] | None = None,
               config: dict[str, Any] | None = None) -> Client:  # fmt: skip
    """A `udsoncan.Client` (not yet opened: use it in a `with` block) on `channel`."""
    ids = ids or diag_ids()
    address = isotp_address(ids)
    conn = VirtualIsoTpConnection(network, channel, address, isotp_params(fd, **(isotp or {})))
    settings = dict(udsoncan.configs.default_client_config)
    settings.update(
        security_algo=security_algorithm, security_algo_params=secret, data_identifiers=DIDS,
        request_timeout=None,  # udsoncan measures it in host time: P2 / P2* are virtual
    )  # fmt: skip
    settings.update(config or {})
    return Client(conn, config=cast(ClientConfig, settings))


def isotp_address(ids: DiagIds) -> isotp.Address:
    """Normal 11-bit addressing; a functional request is a client whose request ID is the
    functional one (can-isotp's 11-bit addresses have one transmit ID)."""
    return isotp.Address(isotp.AddressingMode.Normal_11bits, txid=ids.request, rxid=ids.response)
