"""Trace replay: recorded bus traffic into emulated ECUs in virtual time, and back out."""

from harness.replay.player import ReplayOptions, TracePlayer
from harness.replay.reader import TraceError, TraceFrame, read_trace
from harness.replay.recorder import TraceRecorder
from harness.replay.session import ReplayResult, replay

__all__ = [
    "ReplayOptions",
    "ReplayResult",
    "TraceError",
    "TraceFrame",
    "TracePlayer",
    "TraceRecorder",
    "read_trace",
    "replay",
]
