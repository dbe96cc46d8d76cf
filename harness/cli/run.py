"""`harness run`: boot a firmware ELF and run it, alone, bridged to real CAN buses, or as the
master of an LDF's LIN cluster (the slaves played by the harness)."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

import can

from harness.cli import options
from harness.errors import HarnessError
from harness.ldf import Ldf
from harness.lin_testing import LinCluster, write_records
from harness.machine import Machine
from harness.network import Network
from harness.network.bridge import RealBusBridge, run_paced


def add_subparser(sub: Any) -> None:
    p = sub.add_parser("run", help="run firmware for a span of virtual time, or bridged to CAN")
    p.add_argument("--firmware", required=True, help="Cortex-M ELF file")
    options.add_board(p)
    p.add_argument(
        "--ms",
        type=options.positive_float,
        default=None,
        help="virtual milliseconds (default 1000; bridged: until interrupted)",
    )
    p.add_argument("--symbol", action="append", default=[], help="print this symbol at the end")
    p.add_argument("--gpio", action="store_true", help="print every GPIO output change")
    p.add_argument("--uart", action="append", default=[], metavar="USART",
                   help="print the text this USART sent (e.g. USART1) at the end")  # fmt: skip
    for n in (0, 1):
        p.add_argument(
            f"--can{n}",
            metavar="INTERFACE:CHANNEL",
            help=f"bridge MCAN{n} to a python-can bus, e.g. socketcan:vcan0 or "
            "virtual:bench; the run is then paced to wall-clock time",
        )
    p.add_argument("--lin", metavar="LDF", help="put the firmware on a LIN bus as the LDF's "
                   "master, its slaves played by the harness; prints the LIN frames")
    p.add_argument("--lin-port", default="USART2", metavar="USART",
                   help="the firmware's USART on the LIN bus (default USART2)")
    p.add_argument("--lin-log", metavar="FILE", help="write the LIN frames here instead")
    p.add_argument("--bitrate", type=options.positive_int, default=500_000,
                   help="bridged buses: bit rate")
    p.add_argument("--data-bitrate", type=options.positive_int, default=2_000_000,
                   help="bridged: FD data rate")
    p.set_defaults(func=_run)  # fmt: skip


def open_bus(spec: str) -> can.BusABC:
    interface, sep, channel = spec.partition(":")
    if not sep or not interface or not channel:
        raise HarnessError(f"--canN wants INTERFACE:CHANNEL (e.g. socketcan:vcan0), not {spec!r}")
    try:
        return can.Bus(interface=interface, channel=channel, fd=True)
    except (can.CanError, ValueError, OSError, ImportError) as err:
        raise HarnessError(f"cannot open {spec}: {err}") from err


def _run(args: argparse.Namespace) -> int:
    machine = Machine(args.firmware, board=options.board(args))
    for name in args.uart:
        try:
            machine.uart(name)
        except (KeyError, TypeError) as err:
            raise HarnessError(f"--uart {name}: {err.args[0]}") from None
    if args.lin_log and not args.lin:
        raise HarnessError("--lin-log needs --lin LDF")
    if args.lin_log and not Path(args.lin_log).resolve().parent.is_dir():
        raise HarnessError(f"--lin-log {args.lin_log}: its directory does not exist")
    network = Network()
    cluster = _lin_cluster(args, network, machine) if args.lin else None
    start = time.perf_counter()
    if args.can0 or args.can1:
        _run_bridged(args, network, machine)
    elif cluster is not None:
        network.run_for(ms=1000.0 if args.ms is None else args.ms)
    else:
        machine.run_for(ms=1000.0 if args.ms is None else args.ms)
    wall = time.perf_counter() - start
    if cluster is not None:
        _show_lin(args, cluster)
    if args.gpio:
        print(f"{'time (ms)':>12}  {'pin':<8} level")
        for port in machine.peripherals.values():
            for e in getattr(port, "events", []):
                print(f"{e.cycle * 1000 / machine.clock.hz:12.4f}  {e.port}.{e.pin:<3}  {e.level}")
    for name in args.symbol:
        value = machine.read_symbol(name)
        print(f"{name} = {value if isinstance(value, int) else value.hex()}")
    for name in args.uart:
        text = machine.uart(name).text
        print(f"{name}:")
        if text:
            print(text, end="" if text.endswith("\n") else "\n")
    if machine.semihost_output:
        print(machine.semihost_output, end="" if machine.semihost_output.endswith("\n") else "\n")
    ms = machine.now_ms
    print(
        f"ran {ms:g} ms of virtual time ({machine.cycles} cycles) in {wall:.3f} s wall: "
        f"{machine.cycles / wall / 1e6:.0f} virtual MHz, {ms / 1000 / wall:.1f}x real time"
    )
    if machine.exit_code is not None:
        print(f"firmware exited with status {machine.exit_code} (semihosting)")
        return machine.exit_code
    return 0


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM ends a bridged run as Ctrl-C does: with its summary


def _lin_cluster(args: argparse.Namespace, network: Network, machine: Machine) -> LinCluster:
    ldf = Ldf.load(args.lin)
    network.lin_bus("lin0", ldf.bitrate)
    network.add_ecu("ECU", machine, can0=None)
    try:
        network.attach(network.port("ECU", args.lin_port), "lin0")
    except (KeyError, TypeError) as err:
        raise HarnessError(f"--lin-port {args.lin_port}: {err.args[0]}") from None
    return LinCluster(network, ldf, "lin0", firmware=machine)


def _show_lin(args: argparse.Namespace, cluster: LinCluster) -> None:
    if not cluster.bus.records:
        print(f"warning: no LIN frames: the firmware sent no header on {args.lin_port}",
              file=sys.stderr)  # fmt: skip
    if args.lin_log:
        write_records(cluster.bus.records, args.lin_log)
        print(f"{len(cluster.bus.records)} LIN frames written to {args.lin_log}")
        return
    print("lin0:")
    for record in cluster.bus.records:
        print(record)


def _run_bridged(args: argparse.Namespace, network: Network, machine: Machine) -> None:
    specs = {"can0": args.can0, "can1": args.can1}
    for name, spec in specs.items():
        if spec:
            network.can_bus(name, args.bitrate, args.data_bitrate)
    if "ECU" not in network.ecus:
        network.add_ecu("ECU", machine, can0=None)
    for n, name in enumerate(specs):
        if specs[name]:
            network.attach(network.port("ECU", f"MCAN{n}"), name)
    reals = {name: open_bus(spec) for name, spec in specs.items() if spec}
    bridges = [RealBusBridge(network, name, real) for name, real in reals.items()]
    links = ", ".join(f"{name} <-> {specs[name]}" for name in reals)
    print(f"running paced to the wall clock, bridged {links}", flush=True)  # tools wait for it
    stop_on_term = signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop
    try:
        run_paced(network, bridges, duration_s=None if args.ms is None else args.ms / 1000)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, stop_on_term)
        for real in reals.values():
            real.shutdown()
    for bridge in bridges:
        echoes = f" ({bridge.echoes} of its own echoes dropped)" if bridge.echoes else ""
        print(f"{bridge.name}: {bridge.forwarded} frames to the real bus, "
              f"{bridge.injected} from it{echoes}")  # fmt: skip
