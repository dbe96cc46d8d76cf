"""Moved to `harness.frames.can`; kept for imports not yet moved."""

from harness.frames.can import FD_LENGTHS, CanFrame, FrameError

__all__ = ["FD_LENGTHS", "CanFrame", "FrameError"]
