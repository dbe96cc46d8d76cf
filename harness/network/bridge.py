"""A bridge between a simulated bus and a real python-can bus, paced to wall-clock time.

This is the one place where wall-clock time enters: the network runs in small slices of
virtual time, and the bridge sleeps so that virtual time never runs ahead of the wall
clock. Frames from the real bus join the simulated bus at the current virtual time; frames
on the simulated bus are sent to the real bus as they complete.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import TypeAlias

import can
from can.interfaces.udp_multicast import UdpMulticastBus

from harness.frames.can import CanFrame, FrameError
from harness.network.can import PythonNode
from harness.network.network import Network

log = logging.getLogger(__name__)

# Interfaces that hand a bus's own transmissions back to it and cannot mark them. Their echoes
# are recognised by content; interfaces that can mark them set is_rx=False.
ECHOING_INTERFACES: tuple[type[can.BusABC], ...] = (UdpMulticastBus,)
# How long a forwarded frame waits for its echo (wall time) before it is forgotten: a lost
# echo must not make the bridge drop an identical frame from a real node later.
ECHO_WINDOW_S = 2.0

FrameKey: TypeAlias = tuple[int, bool, bool, bool, bool, int, bytes]


def _key(msg: can.Message) -> FrameKey:
    return (msg.arbitration_id, msg.is_extended_id, msg.is_remote_frame, msg.is_fd,
            msg.bitrate_switch, msg.dlc, bytes(msg.data))  # fmt: skip


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
        self.echoes = 0  # our own frames the real bus handed back, dropped
        self._awaiting: deque[tuple[float, FrameKey]] | None = (
            deque() if isinstance(real, ECHOING_INTERFACES) else None  # (also when wrapped)
        )

    def _forward(self, frame: CanFrame) -> None:
        msg = frame.to_message()
        try:
            self.real.send(msg)
            self.forwarded += 1
        except can.CanError as err:
            log.warning("%s: could not forward %s: %s", self.name, frame, err)
            return
        if self._awaiting is not None:
            self._awaiting.append((time.monotonic(), _key(msg)))

    def _is_own_echo(self, msg: can.Message) -> bool:
        """Frames the bridge sent must never come back in: the ECU would hear itself."""
        if not msg.is_rx:
            return True
        if self._awaiting is None:
            return False
        expired = time.monotonic() - ECHO_WINDOW_S
        while self._awaiting and self._awaiting[0][0] < expired:
            self._awaiting.popleft()
        key = _key(msg)
        for i, (_sent, awaited) in enumerate(self._awaiting):
            if awaited == key:
                del self._awaiting[i]
                return True
        return False

    def pump(self) -> None:
        """Take every frame the real bus has ready onto the simulated bus, now."""
        while (msg := self.real.recv(timeout=0)) is not None:
            if self._is_own_echo(msg):
                self.echoes += 1
                continue
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
