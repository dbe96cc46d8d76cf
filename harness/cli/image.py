"""`harness image sign|show`: signed application images for the A/B bootloader."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness import image
from harness.cli import options
from harness.errors import HarnessError


def _version(text: str) -> tuple[int, int, int]:
    parts = text.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"a version is MAJOR.MINOR.PATCH, not {text!r}")
    major, minor, patch = (int(p) for p in parts)
    return major, minor, patch


def _address(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"an address, e.g. 0x10200, not {text!r}") from None


def add_subparser(sub: Any) -> None:
    p = sub.add_parser("image", help="sign an application image for the bootloader, or show one")
    verbs = p.add_subparsers(dest="verb", required=True)
    s = verbs.add_parser("sign", help="header + body, with the CMAC under a key")
    s.add_argument("firmware", help="ELF, Intel HEX or S-record, linked at the load address")
    s.add_argument("--key", required=True, help="key file: 32 hex digits (AES-128)")
    s.add_argument("--load-address", type=_address, required=True,
                   help="where the body starts: a bank's base + 0x200")  # fmt: skip
    s.add_argument("--version", type=_version, required=True, help="MAJOR.MINOR.PATCH")
    s.add_argument("--counter", type=options.non_negative_int, required=True,
                   help="security counter (rollback protection)")  # fmt: skip
    s.add_argument("-o", "--output", required=True, help="the signed image")
    s.set_defaults(func=_sign)
    w = verbs.add_parser("show", help="print an image's header; --key also checks its CMAC")
    w.add_argument("image")
    w.add_argument("--key", help="key file: also verify the CMAC")
    w.set_defaults(func=_show)


def _sign(args: argparse.Namespace) -> int:
    body = image.body_of(args.firmware, args.load_address)
    signed = image.sign(body, load_address=args.load_address, version=args.version,
                        security_counter=args.counter, key=image.read_key(args.key))  # fmt: skip
    out = Path(args.output)
    if not out.resolve().parent.is_dir():
        raise HarnessError(f"-o {out}: its directory does not exist")
    out.write_bytes(signed)
    print(f"{out}: {len(body)} body bytes at 0x{args.load_address:08X}, version "
          f"{'.'.join(map(str, args.version))}, counter {args.counter}")  # fmt: skip
    return 0


def _show(args: argparse.Namespace) -> int:
    path = Path(args.image)
    data = image.read_file(path)
    header = image.parse(data, str(path))
    print(f"{path}: version {header.version_text}, security counter {header.security_counter}, "
          f"{header.body_size} body bytes at 0x{header.load_address:08X}, CMAC "
          f"{header.mac.hex()}")  # fmt: skip
    if args.key:
        good = image.verify(data, image.read_key(args.key))
        print("CMAC: valid" if good else "CMAC: INVALID (tampered, or another key)")
        return 0 if good else 1
    return 0
