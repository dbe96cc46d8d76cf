"""Signed application images for the A/B bootloader: a header of our own before the body.

Layout in a bank (little-endian; the header fills HEADER_SIZE bytes so the application's
vector table, right after it, keeps the 512-byte alignment VTOR needs for 64 IRQs):

    0x00  magic            b"ASBI"
    0x04  header version   u16 (1)
    0x06  header size      u16 (0x200)
    0x08  image version    u32 (major << 24 | minor << 16 | patch)
    0x0C  security counter u32 (rollback protection: never below the stored one)
    0x10  body size        u32
    0x14  load address     u32 (where the body starts: the bank's base + 0x200)
    0x18  flags            u32 (0)
    0x1C  0xFF up to 0x200 (erased flash)
    0x200 the body         body size bytes
    then  CMAC             16 bytes right after the body: AES-CMAC (NIST SP 800-38B) with the
                           image key over everything before it (header and body)

The MAC trails the body so that what it covers is one contiguous range, [bank base, MAC):
the bootloader checks it with a single operation of the security unit (SRC, LEN), as
MCUboot's trailing TLVs do.

`sign` makes an image from a body, `parse` reads a header (and says what is wrong with it),
`verify` checks the CMAC with a key. `body_of` takes the flash bytes of a firmware file
(ELF, HEX, S-record) that must start at the load address.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.cmac import CMAC

from harness.errors import HarnessError
from harness.loader import load_image

MAGIC = b"ASBI"
HEADER_VERSION = 1
HEADER_SIZE = 0x200
_FIELDS = struct.Struct("<4sHHIIIII")  # magic .. flags
MAC_SIZE = 16
FLASH_END = 0x2000_0000  # what lies below is flash on the board (SRAM starts here)


class ImageError(HarnessError):
    """An image that is not one, or a file that cannot become one."""


@dataclass(frozen=True, slots=True)
class ImageHeader:
    version: tuple[int, int, int]
    security_counter: int
    body_size: int
    load_address: int
    flags: int
    mac: bytes

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


def _cmac(key: bytes, data: bytes) -> bytes:
    if len(key) != 16:
        raise ImageError(f"an image key is 16 bytes (AES-128), not {len(key)}")
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def sign(body: bytes, *, load_address: int, version: tuple[int, int, int],
         security_counter: int, key: bytes) -> bytes:  # fmt: skip
    """The header and the body, the header's CMAC over both with `key`."""
    major, minor, patch = version
    if not (0 <= major < 256 and 0 <= minor < 256 and 0 <= patch < 65536):
        raise ImageError(f"version {major}.{minor}.{patch}: major and minor are 0..255, "
                         "patch 0..65535")  # fmt: skip
    if not 0 <= security_counter < 2**32:
        raise ImageError(f"security counter {security_counter} is not a 32-bit number")
    if not body:
        raise ImageError("an image needs a body")
    fields = _FIELDS.pack(MAGIC, HEADER_VERSION, HEADER_SIZE, major << 24 | minor << 16 | patch,
                          security_counter, len(body), load_address, 0)  # fmt: skip
    signed = fields + b"\xff" * (HEADER_SIZE - len(fields)) + body
    return signed + _cmac(key, signed)


def sign_firmware(firmware: str | Path, *, load_address: int, version: tuple[int, int, int],
                  security_counter: int, key: bytes) -> bytes:  # fmt: skip
    """`sign` the flash bytes of a firmware file (ELF, HEX, S19, BIN) linked at `load_address`."""
    return sign(body_of(firmware, load_address), load_address=load_address, version=version,
                security_counter=security_counter, key=key)  # fmt: skip


def read_file(path: str | Path) -> bytes:
    """A signed image file's bytes (checked with `parse` by the caller)."""
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise ImageError(f"{path}: cannot read: {err.strerror}") from None


def parse(data: bytes, source: str = "image") -> ImageHeader:
    """The header of an image, with what is wrong with it named."""
    if len(data) < HEADER_SIZE:
        raise ImageError(f"{source}: {len(data)} bytes, shorter than the {HEADER_SIZE}-byte "
                         "header")  # fmt: skip
    magic, header_version, header_size, version, counter, size, load, flags = (
        _FIELDS.unpack_from(data))  # fmt: skip
    if magic != MAGIC:
        raise ImageError(f"{source}: magic {magic!r}, expected {MAGIC!r}: not a signed image")
    if header_version != HEADER_VERSION or header_size != HEADER_SIZE:
        raise ImageError(f"{source}: header version {header_version}, size {header_size}; "
                         f"expected {HEADER_VERSION} and {HEADER_SIZE}")  # fmt: skip
    if len(data) - HEADER_SIZE - MAC_SIZE < size:
        raise ImageError(f"{source}: the header says {size} body bytes and a {MAC_SIZE}-byte "
                         f"CMAC after them, the file has {len(data) - HEADER_SIZE} bytes after "
                         "the header")  # fmt: skip
    end = HEADER_SIZE + size
    return ImageHeader(unpack_version(version), counter, size, load, flags,
                       bytes(data[end:end + MAC_SIZE]))  # fmt: skip


def unpack_version(packed: int) -> tuple[int, int, int]:
    """(major, minor, patch) of the header's version word."""
    return packed >> 24, packed >> 16 & 0xFF, packed & 0xFFFF


def verify(data: bytes, key: bytes) -> bool:
    """Whether the image's CMAC matches its header and body under `key`."""
    header = parse(data)
    return _cmac(key, bytes(data[:HEADER_SIZE + header.body_size])) == header.mac


def body_of(firmware: str | Path, load_address: int) -> bytes:
    """The flash bytes of a firmware file as one block from `load_address` (gaps 0xFF)."""
    image = load_image(firmware)
    segments = [s for s in image.segments if s.address < FLASH_END and s.data]
    if not segments:
        raise ImageError(f"{firmware}: nothing to place in flash")
    start = min(s.address for s in segments)
    if start != load_address:
        raise ImageError(f"{firmware}: its flash contents start at 0x{start:08X}, not at the "
                         f"load address 0x{load_address:08X} (link it there)")  # fmt: skip
    end = max(s.address + len(s.data) for s in segments)
    body = bytearray(b"\xff" * (end - start))
    for s in segments:
        body[s.address - start:s.address - start + len(s.data)] = s.data
    return bytes(body)


def read_key(path: str | Path) -> bytes:
    """A key file: 32 hex digits (whitespace allowed)."""
    return parse_key(Path(path).read_text(), str(path))


def parse_key(text: str, source: str) -> bytes:
    """An AES-128 key written as 32 hex digits (whitespace allowed); `source` names it in
    the error."""
    try:
        key = bytes.fromhex("".join(text.split()))
    except ValueError:
        raise ImageError(f"{source}: an AES-128 key is 32 hex digits") from None
    if len(key) != 16:
        raise ImageError(f"{source}: {len(key)} bytes; an AES-128 key is 16 (32 hex digits)")
    return key
