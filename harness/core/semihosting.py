"""ARM semihosting (`bkpt 0xAB`): console output and exit, the way a debugger or QEMU serves them.

Only the calls a test program needs are served, all deterministically: output to the console
handles, exit with a status, the virtual clock and the last error. Anything else stops the run
with a FirmwareFault naming the call, rather than returning a made-up result.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

SEMIHOSTING_BKPT = 0xBEAB  # Thumb encoding of `bkpt 0xAB`
ADP_STOPPED_APPLICATION_EXIT = 0x20026

SYS_WRITEC = 0x03
SYS_WRITE0 = 0x04
SYS_WRITE = 0x05
SYS_CLOCK = 0x10
SYS_ERRNO = 0x13
SYS_EXIT = 0x18
SYS_EXIT_EXTENDED = 0x20
CONSOLE_HANDLES = (1, 2)  # what newlib's crt0 and most runtimes use for stdout / stderr

NAMES = {
    0x01: "SYS_OPEN", 0x02: "SYS_CLOSE", 0x03: "SYS_WRITEC", 0x04: "SYS_WRITE0",
    0x05: "SYS_WRITE", 0x06: "SYS_READ", 0x07: "SYS_READC", 0x08: "SYS_ISERROR",
    0x09: "SYS_ISTTY", 0x0A: "SYS_SEEK", 0x0C: "SYS_FLEN", 0x0D: "SYS_TMPNAM",
    0x0E: "SYS_REMOVE", 0x0F: "SYS_RENAME", 0x10: "SYS_CLOCK", 0x11: "SYS_TIME",
    0x12: "SYS_SYSTEM", 0x13: "SYS_ERRNO", 0x15: "SYS_GET_CMDLINE", 0x16: "SYS_HEAPINFO",
    0x18: "SYS_EXIT", 0x20: "SYS_EXIT_EXTENDED", 0x30: "SYS_ELAPSED", 0x31: "SYS_TICKFREQ",
}  # fmt: skip


class UnsupportedCall(Exception):
    """A semihosting operation the harness does not serve."""


@dataclass(slots=True)
class Semihosting:
    """The host side of semihosting for one machine: its console output and exit status."""

    read: Callable[[int, int], bytes]
    now_centiseconds: Callable[[], int]
    output: bytearray
    exit_code: int | None = None

    def call(self, op: int, arg: int) -> int:
        """Serve one call; returns the value for r0."""
        if op == SYS_WRITEC:
            self.output += self.read(arg, 1)
            return arg
        if op == SYS_WRITE0:
            while (c := self.read(arg, 1)) != b"\0":
                self.output += c
                arg += 1
            return arg
        if op == SYS_WRITE:
            handle, buf, length = struct.unpack("<3I", self.read(arg, 12))
            if handle not in CONSOLE_HANDLES:
                raise UnsupportedCall(f"SYS_WRITE to handle {handle} (only the console, 1 and 2)")
            self.output += self.read(buf, length)
            return 0  # bytes not written
        if op == SYS_CLOCK:
            return self.now_centiseconds()
        if op == SYS_ERRNO:
            return 0
        if op == SYS_EXIT:
            self.exit_code = 0 if arg == ADP_STOPPED_APPLICATION_EXIT else 1
            return 0
        if op == SYS_EXIT_EXTENDED:
            reason, subcode = struct.unpack("<2I", self.read(arg, 8))
            signed = subcode - (1 << 32) if subcode & 0x8000_0000 else subcode
            self.exit_code = signed if reason == ADP_STOPPED_APPLICATION_EXIT else 1
            return 0
        raise UnsupportedCall(f"{NAMES.get(op, 'unknown call')} (0x{op:02X})")
