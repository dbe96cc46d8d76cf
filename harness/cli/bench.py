"""`harness bench`: quick speed figures for one firmware (the full suite is `make bench`)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from harness.cli import options
from harness.machine import Machine


def add_subparser(sub: Any) -> None:
    p = sub.add_parser("bench", help="measure boot time and virtual MHz of a firmware")
    p.add_argument("--firmware", required=True, help="Cortex-M ELF file")
    p.add_argument("--ms", type=options.positive_float, default=1000.0,
                   help="virtual milliseconds to run")
    options.add_board(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    machine = Machine(args.firmware, board=options.board(args))
    boot = time.perf_counter() - t0
    snap = machine.snapshot()
    t1 = time.perf_counter()
    machine.run_for(ms=args.ms)
    wall = time.perf_counter() - t1
    t2 = time.perf_counter()
    machine.restore(snap)
    restore = time.perf_counter() - t2
    print(f"machine creation + load: {boot * 1e3:.1f} ms")
    print(
        f"{args.ms:g} ms virtual in {wall:.3f} s: {machine.cycles / wall / 1e6:.0f} virtual MHz, "
        f"{args.ms / 1000 / wall:.1f}x real time"
    )
    print(f"snapshot restore: {restore * 1e6:.0f} us")
    return 0
