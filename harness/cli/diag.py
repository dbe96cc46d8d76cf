"""`harness diag`: read DIDs and DTCs of an ECU over UDS, clear its DTCs; the bundled light
controller on an emulated bus by default, a real ECU with `--can0 INTERFACE:CHANNEL`."""

from __future__ import annotations

import argparse
from typing import Any

from harness.cli import uds_target
from harness.uds import DIDS

DTC_STATUS_BITS = ("testFailed", "testFailedThisOperationCycle", "pendingDTC", "confirmedDTC",
                   "testNotCompletedSinceLastClear", "testFailedSinceLastClear",
                   "testNotCompletedThisOperationCycle", "warningIndicatorRequested")  # fmt: skip


def _did(text: str) -> int:
    try:
        value = int(text, 16)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a DID in hex, e.g. F187, not {text!r}") from None
    if value not in DIDS:
        known = ", ".join(f"{d:04X}" for d in DIDS)
        raise argparse.ArgumentTypeError(f"DID {value:04X} has no codec here (known: {known})")
    return value


def add_subparser(sub: Any) -> None:
    p = sub.add_parser("diag", help="read DIDs and DTCs over UDS, clear DTCs")
    p.add_argument("--read", nargs="+", type=_did, default=[], metavar="DID",
                   help="DIDs to read, in hex (F187 part number, F189 software version, "
                        "FD00/FD01 bank versions, FD02 banks, FD03 boot state)")  # fmt: skip
    p.add_argument("--dtcs", action="store_true", help="the DTCs with a status bit set")
    p.add_argument("--clear-dtcs", action="store_true", help="clear all DTCs (0x14 FFFFFF)")
    p.add_argument("--ms", type=float, default=300.0,
                   help="emulated: virtual ms the ECU runs before the requests (default 300)")
    uds_target.add_arguments(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    reads = args.read or ([] if args.dtcs or args.clear_dtcs else [0xF187, 0xF189])
    with uds_target.target(args, "elc") as ecu:
        if ecu.network:
            ecu.network.run_for(ms=max(0.0, args.ms - uds_target.BOOT_MS))
        if reads:
            answer: Any = ecu.client.read_data_by_identifier(reads)
            values = answer.service_data.values
            for did in reads:
                print(f"{did:04X}  {_shown(values[did])}")
        if args.dtcs:
            answer = ecu.client.get_dtc_by_status_mask(0xFF)
            dtcs = answer.service_data.dtcs
            print(f"{len(dtcs)} DTC{'s' if len(dtcs) != 1 else ''}")
            for dtc in dtcs:
                status = dtc.status.get_byte_as_int()
                bits = ", ".join(n for i, n in enumerate(DTC_STATUS_BITS) if status >> i & 1)
                print(f"  {dtc.id:06X}  status 0x{status:02X} ({bits})")
        if args.clear_dtcs:
            ecu.client.clear_dtc(0xFFFFFF)
            print("DTCs cleared")
    return 0


def _shown(value: object) -> str:
    """Versions as 1.1.0; anything else as udsoncan decoded it."""
    if isinstance(value, tuple) and len(value) == 3:
        return ".".join(map(str, value))
    return "none" if value is None else str(value)
