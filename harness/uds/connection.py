"""udsoncan's connection to an emulated ECU: can-isotp's transport logic on a python-can
`harness` endpoint, in the network's virtual time, on the caller's thread.

can-isotp's `TransportLayerLogic` is the library's own ISO 15765-2 state machine (the threaded
`TransportLayer` wraps it); here its `process()` is called while the network advances, and
its three timers (STmin, N_Bs, N_Cr) read the network's clock instead of the host's, so every
timeout is virtual and every run is the same. udsoncan's P2 / P2* waits are virtual too: they
are the `timeout` of `wait_frame`. Nothing here is a thread; a test stays deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import can
import isotp
from isotp.tools import Timer
from udsoncan.connections import BaseConnection
from udsoncan.exceptions import TimeoutException

from harness.network.network import Network
from harness.network.python_can import HarnessBus


class _VirtualTimer(Timer):
    """can-isotp's timer on the network's clock (nanoseconds of virtual time)."""

    def __init__(self, timeout: float, now_ns: Callable[[], int]) -> None:
        self._now_ns = now_ns
        super().__init__(timeout)

    def start(self, timeout: float | None = None) -> None:
        if timeout is not None:
            self.set_timeout(timeout)
        self.start_time = self._now_ns()

    def elapsed_ns(self) -> int:
        return 0 if self.start_time is None else self._now_ns() - self.start_time

    def elapsed(self) -> float:
        return self.elapsed_ns() / 1e9


class _VirtualTimeTransport(isotp.TransportLayerLogic):
    """`TransportLayerLogic` whose timers are virtual (the library creates them in these
    methods; can-isotp 2.x)."""

    def __init__(self, now_ns: Callable[[], int], *args: Any, **kwargs: Any) -> None:
        self._now_ns = now_ns
        super().__init__(*args, **kwargs)
        self.timer_tx_stmin = _VirtualTimer(0, now_ns)

    def load_params(self) -> None:
        super().load_params()
        self.timer_rx_fc = self._timer(self.params.rx_flowcontrol_timeout)
        self.timer_rx_cf = self._timer(self.params.rx_consecutive_frame_timeout)

    def _start_rx_fc_timer(self) -> None:
        self.timer_rx_fc = self._timer(self.params.rx_flowcontrol_timeout)
        self.timer_rx_fc.start()

    def _start_rx_cf_timer(self) -> None:
        self.timer_rx_cf = self._timer(self.params.rx_consecutive_frame_timeout)
        self.timer_rx_cf.start()

    def _timer(self, timeout_ms: float) -> _VirtualTimer:
        return _VirtualTimer(float(timeout_ms) / 1000, self._now_ns)

    def next_deadline_ns(self) -> int | None:
        """When a running timer of the transport ends (it may have something to do then)."""
        pending = [t for t in (self.timer_tx_stmin, self.timer_rx_fc, self.timer_rx_cf)
                   if not t.is_stopped()]  # fmt: skip
        if not pending:
            return None
        return self._now_ns() + min(t.remaining_ns() for t in pending) + 1


class VirtualIsoTpConnection(BaseConnection):
    """A udsoncan connection over ISO-TP on simulated bus `channel` of `network`.

    `address`: can-isotp's (e.g. normal 11-bit addressing, txid 0x7E0, rxid 0x7E8); `params`:
    can-isotp's parameters, as on a real bus (stmin, blocksize, tx_data_length 64 and can_fd
    for CAN FD, tx_padding, timeouts in ms...)."""

    def __init__(self, network: Network, channel: str, address: isotp.Address,
                 params: dict[str, Any] | None = None,
                 name: str | None = None) -> None:  # fmt: skip
        super().__init__(name)
        self.network = network
        self.bus = HarnessBus(channel=channel, network=network)
        self.transport = _VirtualTimeTransport(
            lambda: network.now_ns, self._rx, self._tx, address, params=params or {})
        self.frames_sent = 0
        self.frames_received = 0
        self._opened = False

    # ---- can-isotp's link ----

    def _rx(self, timeout: float) -> isotp.CanMessage | None:
        msg = self.bus.recv(0)
        if msg is None:
            return None
        self.frames_received += 1
        return isotp.CanMessage(arbitration_id=msg.arbitration_id, dlc=msg.dlc,
                                data=bytes(msg.data), extended_id=msg.is_extended_id,
                                is_fd=msg.is_fd, bitrate_switch=msg.bitrate_switch)  # fmt: skip

    def _tx(self, msg: isotp.CanMessage) -> None:
        self.frames_sent += 1
        self.bus.send(can.Message(arbitration_id=msg.arbitration_id, data=msg.data,
                                  is_extended_id=msg.is_extended_id, is_fd=msg.is_fd,
                                  bitrate_switch=msg.bitrate_switch))  # fmt: skip

    def _pump(self, done: Callable[[], bool], timeout: float | None) -> bool:
        """Process the transport and advance the network until `done()` or `timeout`
        virtual seconds; whether it got done."""
        network = self.network
        end = None if timeout is None else network.now_ns + int(timeout * 1e9)
        while True:
            self.transport.process()
            if done():
                return True
            if end is not None and network.now_ns >= end:
                return False
            deadline = self.transport.next_deadline_ns()
            until = min((t for t in (end, deadline) if t is not None), default=None)
            if not network.step(until) and until is None:
                return False  # nothing can ever happen: no ECU, no timer

    # ---- udsoncan's BaseConnection ----

    def open(self) -> VirtualIsoTpConnection:
        self._opened = True
        return self

    def close(self) -> None:
        self._opened = False
        self.bus.shutdown()

    def is_open(self) -> bool:
        return self._opened

    def __enter__(self) -> VirtualIsoTpConnection:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def specific_send(self, payload: bytes, timeout: float | None = None) -> None:
        # sent when its last frame is on the bus (ISO-TP's N_USData.con), not merely queued:
        # udsoncan starts P2 when this returns
        self.transport.send(payload)
        self._pump(lambda: not self.transport.transmitting() and not self.bus.tx_pending,
                   timeout)  # fmt: skip

    def specific_wait_frame(self, timeout: float | None = None) -> bytes | None:
        if not self._opened:
            raise RuntimeError("the connection is not open")
        if not self._pump(self.transport.available, timeout):
            raise TimeoutException(  # type: ignore[no-untyped-call]
                f"no ISO-TP message within {timeout} s of virtual time")
        frame = self.transport.recv()
        return None if frame is None else bytes(frame)

    def empty_rxqueue(self) -> None:
        self.transport.clear_rx_queue()
        while self.bus.recv(0) is not None:
            pass

    def empty_txqueue(self) -> None:
        self.transport.stop_sending()
        self.transport.clear_tx_queue()
