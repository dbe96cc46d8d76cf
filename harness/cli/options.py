"""Options several subcommands share."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

from harness.board import Board
from harness.boards import BOARDS, DEFAULT_BOARD


def add_board(p: Any) -> None:
    p.add_argument("--board", choices=sorted(BOARDS), default=DEFAULT_BOARD.name,
                   help=f"board (default {DEFAULT_BOARD.name}; ASILB-M4F has an FPU)")


def board(args: Any) -> Board:
    return BOARDS[args.board]


def positive_int(text: str) -> int:
    """An argparse type: a whole number above 0 (bit rates, passes)."""
    return _whole(text, 1, "above 0")


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number of 0 or more (counts)."""
    return _whole(text, 0, "of 0 or more")


def positive_float(text: str) -> float:
    """An argparse type: a finite number above 0 (time scales)."""
    return _number(text, lambda v: v > 0, "above 0")


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number of 0 or more (durations, windows, tolerances)."""
    return _number(text, lambda v: v >= 0, "of 0 or more")


def _whole(text: str, least: int, wanted: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        value = least - 1
    if value < least:
        raise argparse.ArgumentTypeError(f"expected a whole number {wanted}, not {text!r}")
    return value


def _number(text: str, ok: Callable[[float], bool], wanted: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not ok(value):
        raise argparse.ArgumentTypeError(f"expected a number {wanted}, not {text!r}")
    return value
