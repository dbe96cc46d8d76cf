"""`harness demo`: build the application, boot it on the default board, show what it does."""

from __future__ import annotations

import argparse
import itertools
import time
from typing import Any

from harness.build import build
from harness.cli import bootdemo, candemo, options
from harness.machine import Machine


def add_subparser(sub: Any) -> None:
    p = sub.add_parser("demo", help="boot the bundled application and show it running")
    p.add_argument("--ms", type=options.positive_float, default=2000.0,
                   help="virtual milliseconds (default 2000)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    elf = build(["app"])["app"]
    machine = Machine(elf)
    hz = machine.clock.hz
    print(f"Board {machine.board.name}: {machine.board.doc}, {hz / 1e6:g} MHz")
    print(
        f"Firmware {elf.name}: reset SP 0x{machine.cpu.reg('sp'):08X}, "
        f"PC 0x{machine.cpu.pc:08X} in {machine.image.function_at(machine.cpu.pc)}()"
    )
    start = time.perf_counter()
    machine.run_for(ms=args.ms)
    wall = time.perf_counter() - start

    print("\nHeartbeat LED (GPIOA pin 0), toggled by the 1 ms SysTick task every 500 ticks:")
    print(f"  {'virtual time (ms)':>18}  level")
    for e in machine.gpio("GPIOA").events:
        if e.pin == 0:
            print(f"  {e.cycle * 1000 / hz:18.4f}  {e.level}")
    pa1 = [e for e in machine.gpio("GPIOA").events if e.pin == 1]
    periods = [b.cycle - a.cycle for a, b in itertools.pairwise(pa1)]
    print(
        f"\nControl output (GPIOA pin 1), toggled by TIM2 at 10 kHz: {len(pa1)} edges, "
        f"{min(periods)}-{max(periods)} cycles apart\n  (nominal 12000; the spread is the "
        "latency of interrupting the 1 ms task at a block boundary)"
    )
    print(
        f"CPU load {machine.busy_cycles / machine.cycles:.1%}; the rest of the time the core "
        "sleeps in WFI and the harness skips ahead to the next event"
    )
    for name in ("ms_ticks", "tim2_updates", "tim2_preemptions", "main_wakeups"):
        print(f"  {name:18} {machine.read_symbol(name)!s}")
    print(
        f"\n{args.ms:g} ms of virtual time in {wall:.2f} s of wall time "
        f"({args.ms / 1000 / wall:.1f}x real time, {machine.cycles / wall / 1e6:.0f} virtual MHz)"
    )
    candemo.run()
    bootdemo.run()
    return 0
