"""`harness compare`: two traces by DBC signals in timing windows. Exit status 0 when they are
equal, 1 when they differ, 2 when nothing could be compared (or on any other error)."""

from __future__ import annotations

import argparse
from typing import Any

from harness.cli.options import non_negative_float, non_negative_int
from harness.dbc import Dbc
from harness.errors import HarnessError
from harness.replay.compare import compare_traces


def _tolerance(text: str) -> tuple[str, float]:
    key, sep, value = text.rpartition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected MSG.SIGNAL=ABS, not {text!r}")
    try:
        return key, non_negative_float(value)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected MSG.SIGNAL=ABS with ABS a number of 0 or more, not {text!r}"
        ) from None


def add_subparser(sub: Any) -> None:
    c = sub.add_parser("compare", help="compare two traces by DBC signals, in timing windows")
    c.add_argument("reference")
    c.add_argument("candidate")
    c.add_argument("--dbc", help="DBC (without it frames are compared by raw bytes)")
    c.add_argument("--window-ms", type=non_negative_float, default=5.0, metavar="MS",
                   help="timing window per frame (default %(default)g ms)")  # fmt: skip
    c.add_argument(
        "--tolerance",
        type=_tolerance,
        action="append",
        default=[],
        metavar="MSG.SIGNAL=ABS",
        help="absolute tolerance (glob patterns allowed)",
    )
    c.add_argument(
        "--mask",
        action="append",
        default=[],
        metavar="MSG[.SIGNAL]",
        help="ignore these (glob patterns allowed), e.g. '*.Counter' '*.CRC'",
    )
    c.add_argument(
        "--message",
        action="append",
        default=None,
        metavar="MSG",
        help="compare only these: DBC message names, or IDs (0x123 standard, 0x123x extended)",
    )
    c.add_argument(
        "--whole", action="store_true", help="also report candidate frames after the reference ends"
    )
    c.add_argument(
        "--ignore-channels",
        action="store_true",
        help="pair frames across channels (default: only within the same channel)",
    )
    c.add_argument(
        "--align-first",
        action="store_true",
        help="count each trace's time from its own first compared frame (default: both from "
        "the reference's first frame, one time base)",
    )
    c.add_argument("--show", type=non_negative_int, default=20, help="differences to print")
    c.set_defaults(func=_compare)


def _compare(args: argparse.Namespace) -> int:
    dbc = Dbc.load(args.dbc) if args.dbc else None
    result = compare_traces(args.reference, args.candidate, dbc=dbc, window_ms=args.window_ms,
                            tolerances=dict(args.tolerance), mask=args.mask,
                            messages=args.message, whole=args.whole,
                            ignore_channels=args.ignore_channels,
                            align_first=args.align_first)  # fmt: skip
    print(result.report(args.show))
    if result.empty:
        raise HarnessError(f"nothing compared: {result.nothing_compared}")
    return 0 if result.equal else 1
