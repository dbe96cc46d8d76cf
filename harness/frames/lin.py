"""LIN frames as ISO 17987 / LIN 2.x define them: protected IDs, checksums and frame timing.

A frame is a header sent by the master (break, sync 0x55, protected ID) and a response of 1 to
8 data bytes and a checksum sent by one publisher. The protected ID carries two parity bits:
P0 = ID0 ^ ID1 ^ ID2 ^ ID4 (bit 6) and P1 = !(ID1 ^ ID3 ^ ID4 ^ ID5) (bit 7). The checksum is
the inverted eight-bit sum with carry of the data bytes (classic), or of the protected ID and
the data bytes (enhanced, LIN 2.x); the diagnostic frames 0x3C and 0x3D always use the classic
one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

MAX_ID = 0x3F
DIAGNOSTIC_IDS = (0x3C, 0x3D)  # master request, slave response: classic checksum always
BREAK_BITS = 13  # the least a master sends; slaves detect 11
BREAK_DELIMITER_BITS = 1
BYTE_BITS = 10  # start bit, 8 data bits (LSB first), stop bit
SYNC = 0x55
HEADER_BITS = BREAK_BITS + BREAK_DELIMITER_BITS + 2 * BYTE_BITS  # break, delimiter, sync, PID
FRAME_TOLERANCE = 1.4  # the longest a frame may take: 1.4 x its nominal time

# Sleep and wake-up (ISO 17987-2): the go-to-sleep command is a master request whose first
# byte is 0; a wake-up signal is the bus held dominant for 250 us to 5 ms, and a node takes
# any dominant phase longer than 150 us as one; slaves are ready within 100 ms of it; a bus
# silent for 4 s puts its slaves to sleep.
GO_TO_SLEEP = bytes([0x00] + [0xFF] * 7)
WAKE_UP_NS = 1_000_000  # what the harness's nodes send (inside 250 us .. 5 ms)
WAKE_DETECT_NS = 150_000
WAKE_READY_NS = 100_000_000
IDLE_SLEEP_NS = 4_000_000_000


class LinError(ValueError):
    """A LIN frame that breaks the rules: an ID out of range, a parity or checksum error."""


def protected_id(frame_id: int) -> int:
    """The frame ID (0..63) with its two parity bits."""
    if not 0 <= frame_id <= MAX_ID:
        raise LinError(f"a LIN frame ID is 0..0x3F, not 0x{frame_id:X}")
    bit = [(frame_id >> i) & 1 for i in range(6)]
    p0 = bit[0] ^ bit[1] ^ bit[2] ^ bit[4]
    p1 = 1 - (bit[1] ^ bit[3] ^ bit[4] ^ bit[5])
    return frame_id | p0 << 6 | p1 << 7


def frame_id_of(pid: int) -> int:
    """The frame ID a protected ID carries; a parity error raises `LinError`."""
    frame_id = pid & MAX_ID
    if pid & ~0xFF or protected_id(frame_id) != pid:
        raise LinError(f"protected ID 0x{pid:02X}: parity error (0x{frame_id:02X} is sent as "
                       f"0x{protected_id(frame_id):02X})")  # fmt: skip
    return frame_id


def checksum(data: bytes, pid: int | None = None) -> int:
    """The classic checksum of `data`, or with `pid` the enhanced one (the diagnostic frames
    are always classic, whatever is asked)."""
    total = 0 if pid is None or pid & MAX_ID in DIAGNOSTIC_IDS else pid
    for byte in data:
        total += byte
        total = (total & 0xFF) + (total >> 8)  # the carry goes around
    return ~total & 0xFF


@dataclass(frozen=True, slots=True)
class LinFrame:
    """One frame's content: its ID, 1 to 8 data bytes, and which checksum it uses."""

    frame_id: int
    data: bytes
    enhanced: bool = True  # LIN 2.x; False: classic (LIN 1.x nodes)

    def __post_init__(self) -> None:
        protected_id(self.frame_id)  # checks the range
        if not 1 <= len(self.data) <= 8:
            raise LinError(f"frame 0x{self.frame_id:02X}: a response has 1..8 data bytes, not "
                           f"{len(self.data)}")  # fmt: skip

    @property
    def pid(self) -> int:
        return protected_id(self.frame_id)

    @property
    def checksum(self) -> int:
        return checksum(self.data, self.pid if self.enhanced else None)

    def response(self) -> bytes:
        """The bytes the publisher sends after the header: data, then checksum."""
        return self.data + bytes([self.checksum])

    @classmethod
    def from_response(cls, pid: int, response: bytes, enhanced: bool = True) -> LinFrame:
        """A frame from a protected ID and the response as received; parity and checksum
        errors raise `LinError` naming what was expected."""
        frame_id = frame_id_of(pid)
        if len(response) < 2:
            raise LinError(f"frame 0x{frame_id:02X}: a response is 1..8 data bytes and a "
                           f"checksum, got {len(response)} byte(s)")  # fmt: skip
        frame = cls(frame_id, bytes(response[:-1]), enhanced)
        if frame.checksum != response[-1]:
            raise LinError(f"frame 0x{frame_id:02X}: checksum 0x{response[-1]:02X}, expected "
                           f"0x{frame.checksum:02X} ({'enhanced' if enhanced else 'classic'})")
        return frame


def nominal_ns(data_bytes: int, bitrate: int) -> int:
    """A frame's nominal length: header and response (each byte a start, 8 data and a stop
    bit), with no inter-byte space."""
    bits = HEADER_BITS + BYTE_BITS * (data_bytes + 1)
    return -(-bits * 1_000_000_000 // bitrate)  # rounded up, as frames end on the wire


def max_frame_ns(data_bytes: int, bitrate: int) -> int:
    """The longest a frame may take (ISO 17987: 1.4 x nominal); a response not complete by
    then is a 'no response' or 'incomplete response' error."""
    return round(nominal_ns(data_bytes, bitrate) * FRAME_TOLERANCE)


@dataclass(frozen=True, slots=True)
class LineSymbol:
    """One character on a LIN wire, as transmitters drive it and receivers see it: a byte
    (start bit, 8 data bits LSB first, stop bit) or a break (`value` None: `dominant_bits`
    dominant bits, then a recessive delimiter). Times are nanoseconds."""

    start_ns: int
    end_ns: int
    value: int | None
    dominant_bits: int  # how many bits the line stays dominant from the start bit on
    framing_error: bool = False  # the stop bit was dominant
    noise: bool = False  # bits disturbed: receivers flag noise

    @classmethod
    def byte(cls, start: Fraction, bit_ns: Fraction, value: int, *,
             framing_error: bool = False) -> LineSymbol:  # fmt: skip
        """A byte sent from `start` (exact ns) with bits of `bit_ns` (framing error: its stop
        bit dominant); it starts and ends at the first whole ns at or after the exact times."""
        end = math.ceil(start + BYTE_BITS * bit_ns)
        return cls(math.ceil(start), end, value, dominant_run(value, framing_error), framing_error)

    @classmethod
    def break_(cls, start: Fraction, bit_ns: Fraction, bits: int = BREAK_BITS) -> LineSymbol:
        """A break of `bits` dominant bits and its one-bit delimiter."""
        end = math.ceil(start + (bits + BREAK_DELIMITER_BITS) * bit_ns)
        return cls(math.ceil(start), end, None, bits)

    @property
    def bits(self) -> int:
        """How many bit times it lasts."""
        return BYTE_BITS if self.value is not None else self.dominant_bits + BREAK_DELIMITER_BITS

    def dominant_ns(self, bit_ns: Fraction) -> Fraction:
        return self.dominant_bits * bit_ns


def dominant_run(value: int, framing_error: bool = False) -> int:
    """How many bits a byte holds the line dominant from its start bit: the start bit, then
    the low-order zero bits (sent first), and the stop bit too if all eight are zero and
    the stop bit is dominant."""
    zeros = 8 if value == 0 else (value & -value).bit_length() - 1
    return 1 + zeros + (1 if zeros == 8 and framing_error else 0)
