"""`harness build`: compile the firmware stubs with the bundled zig toolchain."""

from __future__ import annotations

import argparse
from typing import Any

from harness.build import TARGETS, build
from harness.core import native


def add_subparser(sub: Any) -> None:
    p = sub.add_parser("build", help="build the firmware stubs (only what changed)")
    p.add_argument(
        "targets", nargs="*", help=f"targets (default all: {', '.join(t.name for t in TARGETS)})"
    )
    p.add_argument("--force", action="store_true", help="rebuild even if up to date")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    for name, elf in build(args.targets or None, force=args.force).items():
        print(f"{name:10} {elf}")
    print(f"{'emulator':10} {native.library()._name}")  # the C helper, built once per source
    return 0
