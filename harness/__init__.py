"""Deterministic firmware-simulation harness for automotive Cortex-M MCUs."""

from harness.board import Board
from harness.boards import DEFAULT_BOARD
from harness.errors import (
    FirmwareFault,
    FirmwareLoadError,
    HarnessError,
    SimulationError,
    VirtualTimeout,
)
from harness.loader import FirmwareImage, load_elf
from harness.machine import Ecu, Machine, Snapshot

__all__ = [
    "DEFAULT_BOARD",
    "Board",
    "Ecu",
    "FirmwareFault",
    "FirmwareImage",
    "FirmwareLoadError",
    "HarnessError",
    "Machine",
    "SimulationError",
    "Snapshot",
    "VirtualTimeout",
    "load_elf",
]
