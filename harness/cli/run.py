"""`harness run`: boot a firmware ELF and run it for a span of virtual time."""

from __future__ import annotations

import argparse
import time
from typing import Any

from harness.machine import Machine


def add_subparser(sub: Any) -> None:
    p = sub.add_parser("run", help="run firmware for a span of virtual time")
    p.add_argument("--firmware", required=True, help="Cortex-M ELF file")
    p.add_argument("--ms", type=float, default=1000.0, help="virtual milliseconds (default 1000)")
    p.add_argument("--symbol", action="append", default=[], help="print this symbol at the end")
    p.add_argument("--gpio", action="store_true", help="print every GPIO output change")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    machine = Machine(args.firmware)
    start = time.perf_counter()
    machine.run_for(ms=args.ms)
    wall = time.perf_counter() - start
    if args.gpio:
        print(f"{'time (ms)':>12}  {'pin':<8} level")
        for port in machine.peripherals.values():
            for e in getattr(port, "events", []):
                print(f"{e.cycle * 1000 / machine.clock.hz:12.4f}  {e.port}.{e.pin:<3}  {e.level}")
    for name in args.symbol:
        value = machine.read_symbol(name)
        print(f"{name} = {value if isinstance(value, int) else value.hex()}")
    print(
        f"ran {args.ms:g} ms of virtual time ({machine.cycles} cycles) in {wall:.3f} s wall: "
        f"{machine.cycles / wall / 1e6:.0f} virtual MHz, {args.ms / 1000 / wall:.1f}x real time"
    )
    return 0
