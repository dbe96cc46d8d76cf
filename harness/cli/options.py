"""Options several subcommands share."""

from __future__ import annotations

from typing import Any

from harness.board import Board
from harness.boards import BOARDS, DEFAULT_BOARD


def add_board(p: Any) -> None:
    p.add_argument("--board", choices=sorted(BOARDS), default=DEFAULT_BOARD.name,
                   help=f"board (default {DEFAULT_BOARD.name}; ASILB-M4F has an FPU)")


def board(args: Any) -> Board:
    return BOARDS[args.board]
