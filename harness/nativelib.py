"""The native helper library: built once (cached by the hash of its sources) with the
bundled zig toolchain, and loaded with ctypes.

One shared library holds every native part, lowest layer first: the frame timing
(`frames/timing.c`), the CPU's hot path with the NVIC and SysTick (`core/native.c`), the
peripherals' data paths (`peripherals/mcan/native.c`) and the CAN bus (`network/bus.c`).
The peripheral code includes the board header that `harness regs` generates, so register
layouts stay declared once.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import sys
from pathlib import Path

from harness.errors import BuildError
from harness.paths import build_dir, bundled, make_dir, require

_PACKAGE = Path(__file__).parent
SOURCES = (
    _PACKAGE / "frames" / "timing.c",
    _PACKAGE / "core" / "native.c",
    _PACKAGE / "peripherals" / "mcan" / "native.c",
    _PACKAGE / "network" / "bus.c",
)
_HEADER = ("include", "asilb_m4.h")


def _compile(out: Path, include: Path) -> None:
    make_dir(out.parent)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")  # parallel test workers may build it at once
    cmd = [sys.executable, "-m", "ziglang", "cc", "-shared", "-fPIC", "-O2", "-I", str(include),
           "-o", str(tmp), *map(str, SOURCES)]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildError(f"building the native helper failed:\n{result.stderr}")
    tmp.replace(out)  # atomic: parallel test workers never see a half-written library


def enabled() -> bool:
    """Whether the native paths run: `HARNESS_NATIVE=0` selects the pure-Python models, the
    reference the native code is tested against."""
    return os.environ.get("HARNESS_NATIVE", "1") != "0"


_lib: ctypes.CDLL | None = None


def library() -> ctypes.CDLL:
    """The helper library, compiled on first use and cached by the hash of its sources."""
    global _lib
    if _lib is None:
        header = require(bundled("firmware_stubs").joinpath(*_HEADER), "the board header")
        digest = hashlib.sha256()
        for source in (*SOURCES, header):
            digest.update(require(source, "the native helper's source").read_bytes())
        path = build_dir() / "native" / f"libharness_native-{digest.hexdigest()[:16]}.so"
        if not path.exists():
            _compile(path, header.parent)
        lib = ctypes.CDLL(str(path))
        lib.harness_resume_pc.restype = ctypes.c_uint32
        _lib = lib
    return _lib
