"""CAN and CAN FD frames as values, and their conversion to python-can messages."""

from __future__ import annotations

from dataclasses import dataclass

import can

FD_LENGTHS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64)


class FrameError(ValueError):
    """A frame that no CAN controller could send."""


@dataclass(frozen=True, slots=True)
class CanFrame:
    """One frame as it is on the bus. `timestamp_ns` is virtual time (end of frame)."""

    arbitration_id: int
    data: bytes = b""
    is_extended: bool = False
    is_fd: bool = False
    brs: bool = False  # bit-rate switch: the data phase runs at the data bit rate
    esi: bool = False  # error-state indicator: the sender is error-passive
    is_remote: bool = False
    remote_length: int = 0  # the DLC a remote frame requests
    timestamp_ns: int = 0
    channel: str = ""

    def __post_init__(self) -> None:
        limit = 0x1FFFFFFF if self.is_extended else 0x7FF
        if not 0 <= self.arbitration_id <= limit:
            kind = "extended (29-bit)" if self.is_extended else "standard (11-bit)"
            raise FrameError(f"ID 0x{self.arbitration_id:X} does not fit a {kind} identifier")
        if self.is_fd:
            if len(self.data) not in FD_LENGTHS:
                raise FrameError(
                    f"CAN FD frames carry one of {FD_LENGTHS} bytes, not {len(self.data)}"
                )
            if self.is_remote:
                raise FrameError("CAN FD has no remote frames")
        else:
            if len(self.data) > 8:
                raise FrameError(f"classic CAN frames carry at most 8 bytes, not {len(self.data)}")
            if self.brs or self.esi:
                raise FrameError("BRS and ESI exist only in CAN FD frames")
            if self.is_remote and (self.data or not 0 <= self.remote_length <= 8):
                raise FrameError("a remote frame carries no data and requests 0..8 bytes")

    @property
    def dlc(self) -> int:
        if self.is_remote:
            return self.remote_length
        n = len(self.data)
        return n if n <= 8 else FD_LENGTHS.index(n)

    def to_message(self) -> can.Message:
        return can.Message(
            timestamp=self.timestamp_ns / 1e9,
            arbitration_id=self.arbitration_id,
            is_extended_id=self.is_extended,
            is_remote_frame=self.is_remote,
            is_fd=self.is_fd,
            bitrate_switch=self.brs,
            error_state_indicator=self.esi,
            dlc=self.dlc if self.is_remote else len(self.data),
            data=self.data,
            channel=self.channel or None,
        )

    @classmethod
    def from_message(cls, msg: can.Message, timestamp_ns: int = 0) -> CanFrame:
        if msg.is_error_frame:
            raise FrameError("error frames are bus events, not frames a node can queue")
        return cls(
            arbitration_id=msg.arbitration_id,
            data=b"" if msg.is_remote_frame else bytes(msg.data),
            is_extended=msg.is_extended_id,
            is_fd=msg.is_fd,
            brs=msg.bitrate_switch,
            esi=msg.error_state_indicator,
            is_remote=msg.is_remote_frame,
            remote_length=msg.dlc if msg.is_remote_frame else 0,
            timestamp_ns=timestamp_ns,
            channel=str(msg.channel) if msg.channel is not None else "",
        )

    def stamped(self, timestamp_ns: int, channel: str) -> CanFrame:
        """This frame as seen on `channel` at `timestamp_ns` (faster than dataclasses.replace)."""
        return checked_frame(self.arbitration_id, self.data, self.is_extended, self.is_fd,
                             self.brs, self.esi, self.is_remote, self.remote_length,
                             timestamp_ns, channel)  # fmt: skip

    def arbitration_key(self) -> tuple[int, ...]:
        """The arbitration field as bits on the wire; the smallest key wins (0 is dominant)."""
        if self.is_extended:
            base, ext = self.arbitration_id >> 18, self.arbitration_id & 0x3FFFF
            # base ID, SRR (recessive), IDE (recessive), extension, RTR (r1 in FD)
            return (base, 1, 1, ext, int(self.is_remote))
        # base ID, RTR (RRS in FD), IDE (dominant)
        return (self.arbitration_id, int(self.is_remote), 0)


_SLOT_SETTERS = tuple(getattr(CanFrame, name).__set__ for name in CanFrame.__slots__)


def checked_frame(arbitration_id: int, data: bytes, is_extended: bool, is_fd: bool, brs: bool,
                  esi: bool, is_remote: bool, remote_length: int, timestamp_ns: int,
                  channel: str) -> CanFrame:  # fmt: skip
    """A CanFrame of fields already checked (a frame a bus carried, a copy with a new
    timestamp), built without checking them again: twice as fast, for every delivery."""
    frame = object.__new__(CanFrame)
    s = _SLOT_SETTERS
    s[0](frame, arbitration_id), s[1](frame, data), s[2](frame, is_extended)
    s[3](frame, is_fd), s[4](frame, brs), s[5](frame, esi), s[6](frame, is_remote)
    s[7](frame, remote_length), s[8](frame, timestamp_ns), s[9](frame, channel)
    return frame
