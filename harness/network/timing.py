"""Moved to `harness.frames.timing`; kept for imports not yet moved."""

from harness.frames.timing import frame_bits

__all__ = ["frame_bits"]
