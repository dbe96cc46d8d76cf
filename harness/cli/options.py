"""Options several subcommands share."""

from __future__ import annotations

import argparse
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
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {value}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a number above 0 (time scales, tolerances, windows)."""
    return _number(text, lambda v: v > 0, "above 0")


def non_negative_float(text: str) -> float:
    """An argparse type: a number of 0 or more (durations, offsets)."""
    return _number(text, lambda v: v >= 0, "0 or more")


def _number(text: str, ok: Callable[[float], bool], wanted: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
    if not ok(value) or value != value:  # NaN compares false with everything
        raise argparse.ArgumentTypeError(f"must be {wanted}, not {text}")
    return value
