"""A bridge between a simulated bus and a real python-can bus, paced to wall-clock time.

This is the one place where wall-clock time enters: the network runs in small slices of
virtual time, and the bridge sleeps so that virtual time never runs ahead of the wall
clock. Frames from the real bus join the simulated bus at the current virtual time; frames
on the simulated bus are sent to the real bus as they complete.
"""

from __future__ import annotations

import logging
import time

import can

from harness.network.can import PythonNode
from harness.network.frames import CanFrame, FrameError
from harness.network.network import Network

log = logging.getLogger(__name__)


class RealBusBridge:
    """A node on a simulated bus whose other side is a python-can bus."""

    def __init__(self, network: Network, bus_name: str, real: can.BusABC) -> None:
        self.network = network
        self.real = real
        self.name = f"bridge:{bus_name}"
        self.node = PythonNode(self.name, network.bus(bus_name), keep=False)
        self.node.listeners.append(self._forward)
        self.forwarded = 0  # frames sent to the real bus
        self.injected = 0  # frames taken from the real bus

    def _forward(self, frame: CanFrame) -> None:
        try:
            self.real.send(frame.to_message())
            self.forwarded += 1
        except can.CanError as err:
            log.warning("%s: could not forward %s: %s", self.name, frame, err)

    def pump(self) -> None:
        """Take every frame the real bus has ready onto the simulated bus, now."""
        while (msg := self.real.recv(timeout=0)) is not None:
            try:
                frame = CanFrame.from_message(msg, timestamp_ns=self.network.now_ns)
            except FrameError as err:
                log.warning("%s: dropped %s: %s", self.name, msg, err)
                continue
            self.node.send(frame)
            self.injected += 1


def run_paced(network: Network, bridges: list[RealBusBridge], *, duration_s: float | None,
              slice_ms: float = 1.0) -> None:  # fmt: skip
    """Run until `duration_s` of virtual time has passed (None: until interrupted),
    never ahead of the wall clock."""
    wall_start, virtual_start = time.monotonic(), network.now_ns
    end = None if duration_s is None else virtual_start + int(duration_s * 1e9)
    while end is None or network.now_ns < end:
        for bridge in bridges:
            bridge.pump()
        step_end = network.now_ns + int(slice_ms * 1e6)
        network.advance_to(step_end if end is None else min(step_end, end))
        ahead = (network.now_ns - virtual_start) / 1e9 - (time.monotonic() - wall_start)
        if ahead > 0:
            time.sleep(ahead)
