"""Boards shipped with the harness."""

from harness.boards.asilb_m4 import ASILB_M4

DEFAULT_BOARD = ASILB_M4

__all__ = ["ASILB_M4", "DEFAULT_BOARD"]
