"""Frames on the wire, with no simulation behind them: CAN / CAN FD frames, their exact bit
timing, and IDs that tell standard from extended. Peripheral models and the network both
build on this package; it imports neither."""

from harness.frames.can import FD_LENGTHS, CanFrame, FrameError
from harness.frames.ids import EXTENDED, format_id, id_key, normalise, parse_id
from harness.frames.timing import frame_bits

__all__ = ["EXTENDED", "FD_LENGTHS", "CanFrame", "FrameError", "format_id", "frame_bits",
           "id_key", "normalise", "parse_id"]  # fmt: skip
