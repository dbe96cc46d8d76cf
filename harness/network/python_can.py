"""`can.Bus(interface="harness", channel="can0", network=net)`: python-can on a simulated bus.

Registered under python-can's `can.interface` entry point, so cantools, can-isotp, udsoncan,
`can.Notifier` and `can.Logger` use it unchanged. Message timestamps are virtual time.

Two ways to use it (no module-global state: the network is passed in):
- passive (default): the test drives the network (`net.run_for(...)`); frames delivered to
  this endpoint wait in a thread-safe queue, and `recv(timeout)` waits in wall-clock time as
  on a real bus — so a `can.Notifier` thread can read them.
- `drive=True`: single-threaded use. `recv(timeout)` advances the network's virtual time
  until a frame arrives or `timeout` virtual seconds pass; with no timeout and nothing left
  that could ever deliver a frame it returns None instead of blocking forever.
"""

from __future__ import annotations

import itertools
import queue
from typing import Any

import can

from harness.frames.can import CanFrame, FrameError
from harness.network.can import PythonNode
from harness.network.network import Network

_endpoint_numbers = itertools.count(1)


class HarnessBus(can.BusABC):
    """A python-can bus whose other end is a simulated CAN / CAN FD bus."""

    def __init__(
        self,
        channel: Any = None,
        network: Network | None = None,
        drive: bool = False,
        receive_own_messages: bool = False,
        **kwargs: Any,
    ) -> None:
        if not isinstance(network, Network):
            raise can.CanInitializationError(
                "interface 'harness' needs network=<harness.network.Network>: the simulated "
                "network this endpoint joins"
            )
        try:
            bus = network.bus(str(channel))
        except KeyError as err:
            raise can.CanInitializationError(err.args[0]) from None
        self.network = network
        self.drive = drive
        self._node = PythonNode(f"python-can-{next(_endpoint_numbers)}", bus, keep=False)
        self._incoming: queue.SimpleQueue[CanFrame] = queue.SimpleQueue()
        self._node.listeners.append(self._incoming.put)
        if receive_own_messages:
            self._node.sent_listeners.append(self._incoming.put)
        self.channel_info = f"harness simulated bus {bus.name}"
        super().__init__(channel=channel, **kwargs)

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        try:
            frame = CanFrame.from_message(msg, timestamp_ns=self.network.now_ns)
        except FrameError as err:
            raise can.CanOperationError(f"cannot send {msg}: {err}") from err
        self._node.send(frame)

    @property
    def tx_pending(self) -> bool:
        """Frames sent to this endpoint that are not yet on the bus (transmitted in order)."""
        return self._node.pending_since() is not None

    def recv(self, timeout: float | None = None) -> can.Message | None:
        if not self.drive:
            return super().recv(timeout)  # python-can's wall-clock wait and filtering
        # BusABC.recv would keep calling until a *wall-clock* timeout: time here is virtual.
        network = self.network
        end = None if timeout is None else network.now_ns + network.clock.cycles_for(s=timeout)
        incoming = self._incoming
        while True:
            while not incoming.empty():
                msg = incoming.get().to_message()
                if self._matches_filters(msg):
                    return msg
            if not network.step(end):
                return None  # nothing more can arrive in time

    def _recv_internal(self, timeout: float | None) -> tuple[can.Message | None, bool]:
        try:
            frame = self._incoming.get(timeout=timeout)
        except queue.Empty:
            return None, False
        return frame.to_message(), False
