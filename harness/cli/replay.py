"""`harness replay`: a trace into firmware, the bus out (`harness compare` is in compare.py)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from harness.cli import options as cli_options
from harness.cli.options import non_negative_float, positive_float, positive_int
from harness.dbc import Dbc
from harness.errors import HarnessError
from harness.frames.ids import parse_id
from harness.replay.player import ReplayOptions
from harness.replay.reader import formats
from harness.replay.session import TIMING_TOLERANCE_MS, replay


def _can_id(text: str) -> int:
    try:
        return parse_id(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{err}; write 0x123 (standard) or 0x123x "
                                         "(extended)") from err  # fmt: skip


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    return key, value


def add_subparser(sub: Any) -> None:
    p = sub.add_parser("replay", help="replay a bus trace into firmware in virtual time")
    p.add_argument("trace", help=f"trace file ({', '.join(formats())}, optionally .gz)")
    p.add_argument("--firmware", help="ECU firmware ELF (MCAN0 on can0, MCAN1 on can1)")
    cli_options.add_board(p)
    p.add_argument("--dbc", help="DBC for message names (and --ecu-node)")
    p.add_argument("--output", "-o", help="write the replay's bus trace here (format by suffix)")
    p.add_argument("--ecu-node", help="leave out what this DBC node sent in the recording")
    p.add_argument("--exclude-id", type=_can_id, action="append", default=[], metavar="ID",
                   help="leave out this ID (0x123 standard, 0x123x extended; repeatable)")
    p.add_argument(
        "--id",
        type=_can_id,
        action="append",
        default=None,
        metavar="ID",
        help="replay only this ID (0x123 standard, 0x123x extended; repeatable)",
    )
    p.add_argument("--start", type=non_negative_float, default=0.0,
                   help="window start, s after the first frame")
    p.add_argument("--stop", type=non_negative_float, default=None,
                   help="window end, s after the first frame")
    p.add_argument("--time-scale", type=positive_float, default=1.0,
                   help="stretch recorded intervals")
    p.add_argument("--loop", type=positive_int, default=1, help="passes over the trace")
    p.add_argument(
        "--channel",
        type=_pair,
        action="append",
        default=None,
        metavar="CH=BUS",
        help="map a trace channel to can0/can1 (default: everything onto can0)",
    )
    p.add_argument("--bitrate", type=positive_int, default=None,
                   help="nominal bit rate (default: the trace's, where it records it, else 500000)")
    p.add_argument("--data-bitrate", type=positive_int, default=None,
                   help="CAN FD data bit rate (default: the trace's, else 2000000)")
    p.add_argument("--strict-timing", action="store_true",
                   help="fail if the bus cannot inject the stimulus at its recorded times")
    p.add_argument("--timing-tolerance-ms", type=non_negative_float,
                   default=TIMING_TOLERANCE_MS,
                   help="how late a replayed frame may start (default %(default)g ms)")
    p.add_argument("--tail-ms", type=non_negative_float, default=100.0,
                   help="run on after the last frame")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--plot",
        action="append",
        default=[],
        metavar="MSG.SIGNAL",
        help="plot this signal (glob patterns allowed) into --report",
    )
    p.add_argument("--report", help="write the plots (and summary) here: .png or .html")
    p.set_defaults(func=_replay)  # fmt: skip


def _replay(args: argparse.Namespace) -> int:
    dbc = Dbc.load(args.dbc) if args.dbc else None
    if args.plot and (dbc is None or not args.report or not args.output):
        raise HarnessError(
            "--plot needs --dbc, --report and --output (the plots are of the output)"
        )
    if args.plot:
        assert dbc is not None
        from harness.replay.report import check_request  # matplotlib: only when asked for

        check_request(args.report, dbc, args.plot)  # before the replay, not after it
    exclude = set(args.exclude_id)
    if args.ecu_node:
        if dbc is None:
            raise HarnessError("--ecu-node needs --dbc (the DBC says which messages it sends)")
        exclude |= dbc.sent_by(args.ecu_node)
    channels = None
    if args.channel:
        channels = {(int(k) if k.isdigit() else k): v for k, v in args.channel}
    options = ReplayOptions(
        time_scale=args.time_scale, start_s=args.start, stop_s=args.stop,
        ids=frozenset(args.id) if args.id else None, exclude_ids=frozenset(exclude),
        channels=channels, loops=args.loop,
    )  # fmt: skip
    progress = None if args.no_progress or not sys.stderr.isatty() else _progress_bar()
    try:
        result = replay(args.trace, firmware=args.firmware, output=args.output, options=options,
                        board=cli_options.board(args), dbc=dbc, bitrate=args.bitrate,
                        data_bitrate=args.data_bitrate, tail_ms=args.tail_ms,
                        progress=progress, timing_tolerance_ms=args.timing_tolerance_ms,
                        strict_timing=args.strict_timing)  # fmt: skip
    finally:
        if progress is not None:
            progress.close()
    print(result.summary())
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.plot:
        assert dbc is not None
        from harness.replay.report import write_report  # matplotlib: only when asked for

        path = write_report(args.report, args.output, dbc, args.plot, result.summary())
        print(f"report     {path}")
    return 0


def _progress_bar() -> Any:
    from tqdm import tqdm

    layout = "{desc}: {percentage:3.0f}%|{bar}| {n:.2f}/{total:.2f} [{elapsed}]"
    bar = tqdm(total=0, desc="replay (virtual s)", leave=False, bar_format=layout)

    def update(done_ns: int, total_ns: int) -> None:
        bar.total = total_ns / 1e9
        bar.n = done_ns / 1e9
        bar.refresh()

    update.close = bar.close  # type: ignore[attr-defined]
    return update
