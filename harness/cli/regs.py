"""`harness regs`: regenerate (or check) the firmware's C header and the SVD file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.boards import DEFAULT_BOARD
from harness.build import FIRMWARE_DIR
from harness.errors import HarnessError
from harness.regs.export import c_header, svd

HEADER = FIRMWARE_DIR / "include" / "asilb_m4.h"
SVD_FILE = FIRMWARE_DIR / "include" / "asilb_m4.svd"


def generated() -> dict[Path, str]:
    return {HEADER: c_header(DEFAULT_BOARD), SVD_FILE: svd(DEFAULT_BOARD)}


def add_subparser(sub: Any) -> None:
    p = sub.add_parser("regs", help="generate the C header and SVD from the register declarations")
    p.add_argument("--check", action="store_true", help="fail if the checked-in files are stale")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    stale = [path for path, text in generated().items()
             if not path.exists() or path.read_text() != text]  # fmt: skip
    if args.check:
        if stale:
            names = ", ".join(str(p) for p in stale)
            raise HarnessError(f"out of date: {names}; run `harness regs` to regenerate")
        print("generated files are up to date")
        return 0
    for path, text in generated().items():
        path.write_text(text)
        print(f"wrote {path}")
    return 0
