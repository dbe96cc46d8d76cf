"""CAN IDs as one integer that also says standard or extended: 0x600 and 0x600x differ.

The key is SocketCAN's: an extended (29-bit) ID carries `EXTENDED` (CAN_EFF_FLAG). A plain
number above 0x7FF can only be extended, so it is taken as such; written IDs use the Vector
ASC spelling, a trailing `x` for extended.
"""

from __future__ import annotations

EXTENDED = 0x8000_0000
MAX_STANDARD, MAX_EXTENDED = 0x7FF, 0x1FFF_FFFF


def id_key(arbitration_id: int, extended: bool) -> int:
    return arbitration_id | EXTENDED if extended else arbitration_id


def normalise(key: int) -> int:
    """A key from a user: a plain ID above 0x7FF is extended."""
    if key & EXTENDED or key <= MAX_STANDARD:
        return key
    return key | EXTENDED


def parse_id(text: str) -> int:
    """Hexadecimal, as every trace format writes IDs, with or without `0x`: `123` or `0x123`
    (standard), `123x` or `0x123x` (extended), `18FF0042` (extended: too big to be standard).
    Raises ValueError with the reason."""
    body = text.strip()
    extended = body[-1:] in ("x", "X") and body[:-1] not in ("", "0")  # not a bare "0x"
    number = int(body[:-1] if extended else body, 16)
    if number < 0 or number > MAX_EXTENDED:
        raise ValueError(f"{text!r} is not a CAN ID (0 .. 0x1FFFFFFF)")
    return id_key(number, True) if extended else normalise(number)


def format_id(key: int) -> str:
    return f"0x{key & MAX_EXTENDED:X}x" if key & EXTENDED else f"0x{key:X}"
