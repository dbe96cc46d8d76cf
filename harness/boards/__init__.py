"""Boards shipped with the harness."""

from harness.boards.asilb_m4 import ASILB_M4, ASILB_M4F

DEFAULT_BOARD = ASILB_M4
BOARDS = {board.name: board for board in (ASILB_M4, ASILB_M4F)}

__all__ = ["ASILB_M4", "ASILB_M4F", "BOARDS", "DEFAULT_BOARD"]
