"""Simulated buses: CAN / CAN FD frames, their timing on the wire, buses and networks."""

from harness.frames.can import CanFrame, FrameError
from harness.network.can import CanBus, PythonNode
from harness.network.network import Network

__all__ = ["CanBus", "CanFrame", "FrameError", "Network", "PythonNode"]
