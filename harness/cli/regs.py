"""`harness regs`: regenerate (or check) the firmware's C header and the SVD file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.boards import DEFAULT_BOARD
from harness.build import FIRMWARE_DIR
from harness.errors import HarnessError
from harness.paths import checkout_root
from harness.regs.export import c_header, svd

HEADER = FIRMWARE_DIR / "include" / "asilb_m4.h"
SVD_FILE = FIRMWARE_DIR / "include" / "asilb_m4.svd"


def generated(directory: Path | None = None) -> dict[Path, str]:
    """The header and SVD: in `directory`, else where the bundled firmware includes them."""
    header, svd_file = (HEADER, SVD_FILE) if directory is None else (
        directory / HEADER.name, directory / SVD_FILE.name)  # fmt: skip
    return {header: c_header(DEFAULT_BOARD), svd_file: svd(DEFAULT_BOARD)}


def add_subparser(sub: Any) -> None:
    p = sub.add_parser("regs", help="generate the C header and SVD from the register declarations")
    p.add_argument("--check", action="store_true", help="fail if the checked-in files are stale")
    p.add_argument("--out", type=Path, default=None,
                   help="write them into this directory (for your own firmware); default: the "
                        "bundled firmware's include/ in a checkout, else required")  # fmt: skip
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.out is None and checkout_root() is None and not args.check:
        raise HarnessError("harness regs: give --out DIR (the installed package's own copy "
                           "is not for editing)")  # fmt: skip
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    files = generated(args.out)
    stale = [path for path, text in files.items()
             if not path.exists() or path.read_text() != text]  # fmt: skip
    if args.check:
        if stale:
            names = ", ".join(str(p) for p in stale)
            raise HarnessError(f"out of date: {names}; run `harness regs` to regenerate")
        print("generated files are up to date")
        return 0
    for path, text in files.items():
        path.write_text(text)
        print(f"wrote {path}")
    return 0
