"""Signed application images: the header's fields, the AES-CMAC over header and body, every
tampered bit caught, the body taken from a firmware file, and `harness image sign|show`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.cmac import CMAC

from harness import image
from harness.loader import load_elf

KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")  # SP 800-38B's example key
BODY = bytes(range(256)) * 3


def signed(**changes: object) -> bytes:
    args: dict[str, object] = {"load_address": 0x0001_0200, "version": (1, 2, 3),
                               "security_counter": 7, "key": KEY, **changes}  # fmt: skip
    return image.sign(BODY, **args)  # type: ignore[arg-type]


def test_the_header_says_what_was_signed_and_the_cmac_covers_header_and_body() -> None:
    data = signed()
    header = image.parse(data)
    assert (header.version, header.version_text, header.security_counter) == ((1, 2, 3), "1.2.3", 7)
    assert (header.body_size, header.load_address) == (len(BODY), 0x0001_0200)
    assert data[:4] == b"ASBI" and len(data) == image.HEADER_SIZE + len(BODY) + 16
    assert data[0x1C:image.HEADER_SIZE] == b"\xff" * (image.HEADER_SIZE - 0x1C)
    assert data[image.HEADER_SIZE:-16] == BODY
    reference = CMAC(algorithms.AES(KEY))  # computed here, from the documented layout
    reference.update(data[:-16])
    assert header.mac == data[-16:] == reference.finalize()
    assert image.verify(data, KEY)


def test_every_flipped_bit_is_caught() -> None:
    data = signed()
    covered = range(len(data))  # header, padding, body and the MAC itself
    for offset in covered:
        for bit in (0, 7):
            tampered = bytearray(data)
            tampered[offset] ^= 1 << bit
            try:
                good = image.verify(bytes(tampered), KEY)
            except image.ImageError:
                good = False  # magic, sizes: not even an image any more
            assert not good, (offset, bit)
    assert not image.verify(data, bytes(16))  # another key


def test_bad_images_and_arguments_are_named() -> None:
    with pytest.raises(image.ImageError, match="magic b'XSBI', expected b'ASBI'"):
        image.parse(b"X" + signed()[1:])
    with pytest.raises(image.ImageError, match=r"says 768 body bytes and a 16-byte CMAC after "
                       r"them, the file has 783 bytes after the header"):
        image.parse(signed()[:-1])
    with pytest.raises(image.ImageError, match=r"shorter than the 512-byte header"):
        image.parse(b"ASBI")
    with pytest.raises(image.ImageError, match=r"major and minor are 0\.\.255"):
        signed(version=(256, 0, 0))
    with pytest.raises(image.ImageError, match=r"16 bytes \(AES-128\), not 8"):
        signed(key=bytes(8))


def test_the_body_is_a_firmwares_flash_from_its_load_address(firmware) -> None:
    elf = load_elf(firmware["app"])
    start = min(s.address for s in elf.segments if s.address < 0x2000_0000)
    body = image.body_of(firmware["app"], start)
    first = next(s for s in elf.segments if s.address == start)
    assert body[:len(first.data)] == first.data
    elsewhere = rf"start at 0x{start:08X}, not at the load address 0x00100000 \(link it there\)"
    with pytest.raises(image.ImageError, match=elsewhere):
        image.body_of(firmware["app"], 0x0010_0000)


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli.main", *args],
                          capture_output=True, text=True, check=False)  # fmt: skip


def test_harness_image_sign_and_show(firmware, tmp_path: Path) -> None:
    start = min(s.address for s in load_elf(firmware["app"]).segments if s.address < 0x2000_0000)
    key = tmp_path / "image.key"
    key.write_text(KEY.hex() + "\n")
    out = tmp_path / "app.img"
    made = harness("image", "sign", str(firmware["app"]), "--key", str(key), "--load-address",
                   hex(start), "--version", "2.0.1", "--counter", "3", "-o", str(out))  # fmt: skip
    assert made.returncode == 0, made.stderr
    shown = harness("image", "show", str(out), "--key", str(key))
    assert shown.returncode == 0
    assert "version 2.0.1, security counter 3" in shown.stdout and "CMAC: valid" in shown.stdout
    data = bytearray(out.read_bytes())
    data[-1] ^= 0x01
    out.write_bytes(bytes(data))
    tampered = harness("image", "show", str(out), "--key", str(key))
    assert tampered.returncode == 1 and "CMAC: INVALID" in tampered.stdout
    bad = harness("image", "sign", str(firmware["app"]), "--key", str(key), "--load-address",
                  "0x100000", "--version", "1.0", "--counter", "1", "-o", str(out))  # fmt: skip
    assert bad.returncode == 2 and "MAJOR.MINOR.PATCH" in bad.stderr
