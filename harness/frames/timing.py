"""How long a frame occupies the bus: its exact bit count, stuff bits included.

The frame is built bit by bit as ISO 11898-1 sends it, so the stuff bits are the ones this
frame really gets (not a worst case). Classic frames stuff from SOF to the end of the CRC.
CAN FD frames stuff dynamically from SOF to the end of the data field, then send the stuff
count and the CRC with fixed stuff bits; the data phase (from BRS to the CRC delimiter)
runs at the data bit rate when BRS is set.

This module is the specification; `frame_bits` computes the same in C (`timing.c`) unless
`HARNESS_NATIVE=0`, because a replayed trace rarely repeats a frame and Python spends 60-140 us
per new frame on it (C: 6-11 us, most of it the call).
"""

from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass
from typing import Any

from harness import nativelib
from harness.frames.can import FD_LENGTHS, CanFrame

# After the CRC: CRC delimiter, ACK slot, ACK delimiter, EOF (7), intermission (3).
TRAILER_BITS = 1 + 1 + 1 + 7 + 3


@dataclass(frozen=True, slots=True)
class FrameBits:
    """Bits at the nominal (arbitration) rate and at the data rate."""

    nominal: int
    data: int
    stuff: int  # dynamic stuff bits among the above

    def duration_ns(self, bitrate: int, data_bitrate: int | None = None) -> int:
        fast = data_bitrate or bitrate
        return -(-(self.nominal * 10**9 * fast + self.data * 10**9 * bitrate) // (bitrate * fast))


def _bits(value: int, width: int) -> list[int]:
    return [(value >> (width - 1 - i)) & 1 for i in range(width)]


def _crc(bits: list[int], poly: int, width: int, init: int = 0) -> int:
    crc = init
    top = 1 << (width - 1)
    mask = (1 << width) - 1
    for bit in bits:
        feedback = bit ^ bool(crc & top)
        crc = (crc << 1) & mask
        if feedback:
            crc ^= poly
    return crc


def _stuffed_length(bits: list[int]) -> tuple[int, int]:
    """(bits after stuffing, stuff bits): a complement bit after five equal bits."""
    stuff, run, last = 0, 0, -1
    for bit in bits:
        if bit == last:
            run += 1
        else:
            run, last = 1, bit
        if run == 5:
            stuff += 1
            last, run = 1 - bit, 1  # the stuff bit starts a new run
    return len(bits) + stuff, stuff


def _header(frame: CanFrame) -> list[int]:
    """SOF through the end of the data field, unstuffed."""
    bits = [0]  # SOF
    if frame.is_extended:
        bits += [*_bits(frame.arbitration_id >> 18, 11), 1, 1]  # SRR, IDE
        bits += _bits(frame.arbitration_id & 0x3FFFF, 18)
        bits += [int(frame.is_remote)] if not frame.is_fd else [0]  # RTR / RRS
        bits += [int(frame.is_fd), 0] if frame.is_fd else [0, 0]  # FDF|r1, res|r0
    else:
        bits += _bits(frame.arbitration_id, 11)
        bits += [0] if frame.is_fd else [int(frame.is_remote)]  # RRS / RTR
        bits += [0]  # IDE
        bits += [1, 0] if frame.is_fd else [0]  # FDF, res / r0
    if frame.is_fd:
        bits += [int(frame.brs), int(frame.esi)]
    bits += _bits(frame.dlc, 4)
    for byte in frame.data:
        bits += _bits(byte, 8)
    return bits


_native_out = (ctypes.c_uint32 * 3)()
_native_fn: Any = None


@functools.lru_cache(maxsize=4096)
def _native_frame_bits(ident: int, data: bytes, extended: bool, fd: bool, brs: bool,
                       esi: bool, remote: bool, remote_length: int) -> FrameBits:  # fmt: skip
    global _native_fn
    if _native_fn is None:
        fn = nativelib.library().harness_frame_bits
        fn.restype = None
        fn.argtypes = (ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_char_p,
                       ctypes.c_uint32, ctypes.c_void_p)  # fmt: skip
        _native_fn = fn
    flags = extended | fd << 1 | brs << 2 | esi << 3 | remote << 4
    n = len(data)
    dlc = remote_length if remote else n if n <= 8 else FD_LENGTHS.index(n)
    out = _native_out
    _native_fn(ident, flags, dlc, data, n, out)
    return FrameBits(out[0], out[1], out[2])


def frame_bits(frame: CanFrame) -> FrameBits:
    """Cached by content, as a bus carries the same frames again and again; computed in C
    (see the module's docstring), or by this module with `HARNESS_NATIVE=0`."""
    return _BITS(frame.arbitration_id, frame.data, frame.is_extended, frame.is_fd, frame.brs,
                 frame.esi, frame.is_remote, frame.remote_length)  # fmt: skip


def reference_frame_bits(frame: CanFrame) -> FrameBits:
    """The bits as this module builds them (the specification)."""
    return _frame_bits(frame.arbitration_id, frame.data, frame.is_extended, frame.is_fd,
                       frame.brs, frame.esi, frame.is_remote, frame.remote_length)  # fmt: skip


@functools.lru_cache(maxsize=4096)
def _frame_bits(ident: int, data: bytes, extended: bool, fd: bool, brs: bool, esi: bool,
                remote: bool, remote_length: int) -> FrameBits:  # fmt: skip
    frame = CanFrame(ident, data, extended, fd, brs, esi, remote, remote_length)
    header = _header(frame)
    if not frame.is_fd:
        crc = _crc(header, 0x4599, 15)
        stuffed, stuff = _stuffed_length(header + _bits(crc, 15))
        return FrameBits(stuffed + TRAILER_BITS, 0, stuff)
    stuffed, stuff = _stuffed_length(header)
    crc_width = 17 if len(frame.data) <= 16 else 21
    # Stuff count (3-bit Gray code + parity) and CRC, with a fixed stuff bit before the stuff
    # count and after every 4 bits of the two (the value of either does not change the length).
    fixed = 4 + crc_width + 1 + (4 + crc_width - 1) // 4
    total = stuffed + fixed + TRAILER_BITS
    if not frame.brs:
        return FrameBits(total, 0, stuff)
    # Arbitration rate until the BRS bit and from the CRC delimiter on.
    brs_index = len(header) - 4 - 8 * len(frame.data) - 2
    before_brs, _ = _stuffed_length(header[: brs_index + 1])
    nominal = before_brs + TRAILER_BITS
    return FrameBits(nominal, total - nominal, stuff)


# read once, at import: this runs for every frame on every bus
_BITS = _native_frame_bits if nativelib.enabled() else _frame_bits


def format_bitrate(rate: int) -> str:
    """A bit rate as people write it: 500 kbit/s, 2 Mbit/s."""
    return f"{rate / 1e6:g} Mbit/s" if rate >= 1_000_000 else f"{rate / 1e3:g} kbit/s"
