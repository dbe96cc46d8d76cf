"""`harness flash IMAGE`: reprogram an ECU over UDS the way an OEM tool does (harness.uds.flash),
an emulated one by default (the bundled bootloader with the light controller in bank A), or a
real one with `--can0 INTERFACE:CHANNEL`."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from harness import boot, image
from harness.cli import uds_target
from harness.uds.connection import VirtualIsoTpConnection
from harness.uds.flash import checked_image, flash


def add_subparser(sub: Any) -> None:
    p = sub.add_parser("flash", help="reprogram an ECU over UDS (CAN FD or classic CAN)")
    p.add_argument("image", help="a signed image (harness image sign) for the bank to update")
    uds_target.add_arguments(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    path = Path(args.image)
    data = image.read_file(path)
    header = checked_image(data, str(path))  # before anything is started
    with uds_target.target(args, "bootloader") as ecu:
        start_ns = ecu.network.now_ns if ecu.network else 0
        start = time.perf_counter()
        with tqdm(total=len(data), unit="B", unit_scale=True, disable=args.no_progress,
                  desc=f"{path.name} {header.version_text}") as bar:  # fmt: skip

            def progress(sent: int, _total: int) -> None:
                bar.update(sent - bar.n)

            result = flash(ecu.client, data, source=str(path), progress=progress)
        wall = time.perf_counter() - start
        print(f"{result.bytes_sent:,} bytes in {result.blocks} blocks of {result.block_length} "
              f"to 0x{result.address:08X}")  # fmt: skip
        conn = ecu.client.conn
        if isinstance(conn, VirtualIsoTpConnection) and ecu.network and ecu.ecu:
            virtual_ms = (ecu.network.now_ns - start_ns) / 1e6
            print(f"{conn.frames_sent:,} frames sent, {conn.frames_received:,} received; "
                  f"{virtual_ms:,.1f} ms of virtual time in {wall:.2f} s of wall time")
            ecu.network.run_for(ms=uds_target.BOOT_MS)
            report = boot.report(ecu.ecu)
            if report is not None and report.booted_bank:
                records = boot.records(ecu.ecu)
                confirmed = bool(records) and records[-1].confirmed == report.booted_bank
                version = report.versions["AB".index(report.booted_bank)]
                print(f"the ECU booted bank {report.booted_bank} "
                      f"{'.'.join(map(str, version or ()))} as {report.state}"
                      f"{', and it confirmed itself' if confirmed else ''}")
        else:
            print(f"{wall:.2f} s")
    return 0
