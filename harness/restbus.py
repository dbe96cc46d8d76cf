"""Rest-bus simulation: the vehicle around the ECU under test, from the DBC.

Every message that another node sends (per the DBC's transmitter) and the ECU receives, and
that has a `GenMsgCycleTime`, is sent at that period with signal values a test can change at
any time. Alive counters count on their own; E2E-protected messages (from the DBC's
attributes or a config, see `harness.e2e.config`) get their counter and CRC right on every
frame. Faults are injected per message into the next frames: a corrupted CRC, a repeated or
skipped counter, a wrong data ID, a dropped or delayed frame; `stop()` silences a message.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from cantools.database.can import Message

from harness.dbc import Dbc
from harness.e2e.profiles import Profile, Profile2
from harness.frames.can import CanFrame
from harness.frames.ids import id_key
from harness.network.can import PythonNode
from harness.network.network import Network


class Fault(Enum):
    CORRUPT_CRC = "corrupt_crc"  # one CRC bit flipped after protection
    REPEAT_COUNTER = "repeat_counter"  # the counter does not advance
    SKIP_COUNTER = "skip_counter"  # the counter jumps by 2 more than it should
    WRONG_DATA_ID = "wrong_data_id"  # protected with another data ID (masquerading)
    DROP = "drop"  # the frame is not sent
    DELAY = "delay"  # the frame is sent `delay_ms` late


@dataclass
class CyclicMessage:
    message: Message
    period_ns: int
    values: dict[str, Any]
    profile: Profile | None
    counter_signal: str | None
    counter: int = 0
    running: bool = True
    sent: int = 0
    faults: deque[Fault] = dataclasses.field(default_factory=deque)
    delay_ns: int = 0


class RestBus:
    def __init__(
        self,
        network: Network,
        dbc: Dbc,
        ecu_node: str,
        bus: str = "can0",
        e2e: Mapping[str, Profile] | None = None,
    ) -> None:
        own = dbc.sent_by(ecu_node)
        self.network = network
        self.dbc = dbc
        e2e = e2e or {}
        unknown = set(e2e) - {m.name for m in dbc.database.messages}
        if unknown:
            raise ValueError(
                f"E2E configured for messages the DBC does not have: {sorted(unknown)}"
            )
        self.messages: dict[str, CyclicMessage] = {}
        for message in dbc.database.messages:
            cycle = message.cycle_time or 0
            receives = any(ecu_node in s.receivers for s in message.signals)
            own_message = id_key(message.frame_id, message.is_extended_frame) in own
            if own_message or not receives or cycle <= 0:
                continue
            dbc.encode(message.name)  # start values that cannot be sent: an error now, not later
            counters = [s.name for s in message.signals if s.name.endswith("_Counter")]
            self.messages[message.name] = CyclicMessage(
                message, cycle * 1_000_000, {}, e2e.get(message.name),
                counters[0] if len(counters) == 1 else None,
            )  # fmt: skip
        # joins the bus only once everything is checked: a refused rest-bus leaves no node
        self.node = PythonNode(f"restbus:{bus}", network.bus(bus), keep=False)
        self._deadlines = {
            name: network.clock.deadline(self._sender(name)) for name in self.messages
        }
        for name in self.messages:
            self._deadlines[name].arm_at(network.now_ns)

    def _sender(self, name: str) -> Callable[[], None]:
        return lambda: self._send(name)

    def _cyclic(self, name: str) -> CyclicMessage:
        try:
            return self.messages[name]
        except KeyError:
            known = ", ".join(self.messages) or "none"
            raise KeyError(f"{name!r} is not a rest-bus message (they are: {known})") from None

    def set(self, name: str, **signals: Any) -> None:
        """New signal values from the next frame on (checked against the DBC now)."""
        cyclic = self._cyclic(name)
        values = {**cyclic.values, **signals}
        self.dbc.encode(name, **values)  # raises a DbcError naming the bad signal or value
        cyclic.values = values

    def stop(self, name: str) -> None:
        self._cyclic(name).running = False

    def start(self, name: str) -> None:
        cyclic = self._cyclic(name)
        if not cyclic.running:
            cyclic.running = True
            self._deadlines[name].arm_at(self.network.now_ns)

    def inject(self, name: str, fault: Fault, count: int = 1, delay_ms: float = 0.0) -> None:
        """Apply `fault` to the next `count` frames of `name`."""
        cyclic = self._cyclic(name)
        if fault in (Fault.CORRUPT_CRC, Fault.WRONG_DATA_ID) and cyclic.profile is None:
            raise ValueError(f"{name} is not E2E-protected: there is no CRC or data ID to break")
        if fault is Fault.DELAY:
            if delay_ms <= 0:
                raise ValueError("a DELAY fault needs delay_ms > 0")
            cyclic.delay_ns = round(delay_ms * 1e6)
        cyclic.faults.extend([fault] * count)

    def _send(self, name: str) -> None:
        cyclic = self.messages[name]
        if not cyclic.running:
            return
        fault = cyclic.faults.popleft() if cyclic.faults else None
        self._deadlines[name].arm_at(self.network.now_ns + cyclic.period_ns)
        if fault is Fault.DELAY:
            late = self.network.now_ns + cyclic.delay_ns
            self.network.clock.schedule_at(late, lambda: self.node.send(self._frame(cyclic, None)))
            return
        if fault is Fault.DROP:
            cyclic.counter += 1  # the sender counted it: the receiver sees a gap
            return
        self.node.send(self._frame(cyclic, fault))

    def _frame(self, cyclic: CyclicMessage, fault: Fault | None) -> CanFrame:
        name = cyclic.message.name
        if fault is Fault.REPEAT_COUNTER:
            cyclic.counter -= 1
        elif fault is Fault.SKIP_COUNTER:
            cyclic.counter += 2
        counter = cyclic.counter
        cyclic.counter += 1
        cyclic.sent += 1
        values = dict(cyclic.values)
        profile = cyclic.profile
        if profile is None and cyclic.counter_signal is not None:
            top = cyclic.message.get_signal_by_name(cyclic.counter_signal).maximum
            values[cyclic.counter_signal] = counter % (int(top if top is not None else 15) + 1)
        frame = self.dbc.encode(name, **values)
        if profile is None:
            return frame
        if fault is Fault.WRONG_DATA_ID:
            profile = _other_data_id(profile)
        data = bytearray(profile.protect(frame.data, counter))
        if fault is Fault.CORRUPT_CRC:
            data[profile.crc_byte] ^= 0x01
        return dataclasses.replace(frame, data=bytes(data))


def _other_data_id(profile: Profile) -> Profile:
    if isinstance(profile, Profile2):
        return dataclasses.replace(profile, data_ids=tuple(i ^ 0x5A for i in profile.data_ids))
    return dataclasses.replace(profile, data_id=profile.data_id ^ 0x5A5A)
