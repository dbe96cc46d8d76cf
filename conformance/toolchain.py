"""Programs and builds: csmith's random programs, built by two compilers at five levels.

One image runs everywhere: the runtime in `runtime/` (vector table, reset, semihosted console
and exit, the tick handler) and its linker script fit both the harness's default board and
QEMU's mps2-an386 (flash at 0, 256 KB of RAM at 0x20000000).

- clang (zig's): freestanding, no C library, so the runtime's own `rt_libc.c` gives printf,
  putchar and the memory/string functions; compiler-rt comes with zig.
- gcc (Debian's arm-none-eabi): links newlib-nano and libgcc, with `rt_newlib.c` as its system
  calls. The point of a second build is a second, independent body of code; newlib brings its
  own printf and its hand-written Thumb-2 string and memory routines, which the clang build
  never runs.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.paths import PROJECT_ROOT, build_dir

RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"
LINKER_SCRIPT = RUNTIME_DIR / "conformance.ld"
CSMITH_INCLUDE = Path("/usr/include/csmith")
NEWLIB_INCLUDE = Path("/usr/lib/arm-none-eabi/include")

DEBIAN_PACKAGES = (
    "qemu-system-arm", "csmith", "libcsmith-dev", "gcc-arm-none-eabi", "libnewlib-arm-none-eabi",
)  # fmt: skip
INSTALL_COMMAND = f"apt-get install -y {' '.join(DEBIAN_PACKAGES)}"

COMPILERS = ("clang", "gcc")
LEVELS = ("O0", "O1", "O2", "Os", "O3")

# Small, quick programs (a median of ~0.3 M instructions; one in eight never ends and is
# reported as a timeout): few functions, shallow blocks and structs, small arrays (every
# element's hash is printed, so array sizes set the output's length).
CSMITH_OPTIONS = (
    "--max-funcs", "8",
    "--max-block-depth", "4",
    "--max-block-size", "4",
    "--max-expr-complexity", "8",
    "--max-struct-fields", "6",
    "--max-union-fields", "4",
    "--max-array-dim", "2",
    "--max-array-len-per-dim", "6",
    "--max-pointer-depth", "2",
)  # fmt: skip

CLANG = (
    sys.executable, "-m", "ziglang", "cc",
    "-target", "thumb-freestanding-eabi", "-mcpu=cortex_m4", "-mfloat-abi=soft",
)  # fmt: skip
GCC = ("arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft")
PROGRAM_CFLAGS = (
    "-DSTANDALONE", f"-I{RUNTIME_DIR / 'include'}", f"-I{CSMITH_INCLUDE}", "-w", "-g",
)  # fmt: skip
RUNTIME_CFLAGS = ("-O2", "-g", "-ffreestanding", "-fno-builtin", "-Wall", "-Wextra", "-Werror")
LDFLAGS = ("-T", str(LINKER_SCRIPT), "-Wl,--gc-sections", "-Wl,--entry=Reset_Handler")
RUNTIME_SOURCES = {
    "clang": ("rt_start.c", "rt_asm.S", "rt_libc.c"),
    "gcc": ("rt_start.c", "rt_asm.S", "rt_newlib.c"),
}


class MissingTools(RuntimeError):
    """A Debian package the sweep needs is not installed."""


class ToolchainError(RuntimeError):
    """csmith, a compiler or the linker failed."""


def check_tools() -> None:
    """Raise MissingTools, naming the install command, unless every Debian tool is there."""
    missing = [t for t in ("csmith", "arm-none-eabi-gcc", "qemu-system-arm") if not shutil.which(t)]
    missing += [str(p) for p in (CSMITH_INCLUDE / "csmith.h", NEWLIB_INCLUDE / "stdio.h")
                if not p.exists()]  # fmt: skip
    if missing:
        raise MissingTools(f"missing: {', '.join(missing)}; install the Debian packages with\n"
                           f"  sudo {INSTALL_COMMAND}\n(or `make debian-deps`)")  # fmt: skip


def work_dir() -> Path:
    return build_dir() / "conformance"


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "little"))
        h.update(p)
    return h.hexdigest()[:12]


def _run(cmd: list[str], what: str, cwd: Path | None = None) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=cwd)
    if result.returncode != 0:
        raise ToolchainError(f"{what} failed ({' '.join(cmd)}):\n{result.stderr.strip()[-4000:]}")
    return result.stdout


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def csmith_version() -> str:
    d = work_dir()
    d.mkdir(parents=True, exist_ok=True)  # csmith writes a platform.info where it runs
    return _run(["csmith", "--version"], "csmith --version", cwd=d).split("\n")[0].strip()


def program_dir() -> Path:
    """Where the programs of this csmith version and these options live."""
    tag = _digest(csmith_version().encode(), " ".join(CSMITH_OPTIONS).encode())
    d = work_dir() / f"programs-{tag}"
    d.mkdir(parents=True, exist_ok=True)
    return d


def generate(seed: int, directory: Path | None = None) -> Path:
    """csmith's program for `seed` (generated once; csmith output is fixed by the seed)."""
    d = directory or program_dir()
    path = d / f"seed{seed}.c"
    if not path.exists():
        # csmith leaves a platform.info in its working directory: keep it out of the checkout.
        text = _run(["csmith", "--seed", str(seed), *CSMITH_OPTIONS], f"csmith --seed {seed}",
                    cwd=d)  # fmt: skip
        _atomic_write(path, text.encode())
    return path


@dataclass(frozen=True, slots=True)
class Runtime:
    compiler: str
    objects: tuple[Path, ...]


def _compiler(compiler: str) -> tuple[str, ...]:
    if compiler not in RUNTIME_SOURCES:
        raise ValueError(f"unknown compiler {compiler!r}; one of {', '.join(COMPILERS)}")
    return CLANG if compiler == "clang" else GCC


def runtime(compiler: str) -> Runtime:
    """The runtime's objects for one compiler, rebuilt when a source or a flag changed. A file
    lock makes concurrent workers wait for each other."""
    cc = _compiler(compiler)
    sources = RUNTIME_SOURCES[compiler]
    files = sorted({*sources, "rt.h"})
    tag = _digest(" ".join((*cc[2:], *RUNTIME_CFLAGS)).encode(),
                  *(f.encode() + (RUNTIME_DIR / f).read_bytes() for f in files))  # fmt: skip
    out = work_dir() / "runtime" / f"{compiler}-{tag}"
    out.mkdir(parents=True, exist_ok=True)
    objects = tuple(out / (Path(s).stem + ".o") for s in sources)
    with open(out / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not all(o.exists() for o in objects):
            for src, obj in zip(sources, objects, strict=True):
                tmp = obj.with_name(f".{obj.name}.{os.getpid()}.tmp")
                _run([*cc, *RUNTIME_CFLAGS, "-c", str(RUNTIME_DIR / src), "-o", str(tmp)],
                     f"runtime {src} ({compiler})")  # fmt: skip
                tmp.replace(obj)
    return Runtime(compiler, objects)


def build(source: Path, compiler: str, level: str, out_dir: Path | None = None) -> Path:
    """Compile and link one program with one compiler at one level; returns the ELF."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; one of {', '.join(LEVELS)}")
    rt = runtime(compiler)
    out = out_dir or work_dir() / "elf" / source.parent.name
    out.mkdir(parents=True, exist_ok=True)
    elf = out / f"{source.stem}-{compiler}-{level}.elf"
    tmp = elf.with_name(f".{elf.name}.{os.getpid()}.tmp")
    cmd = [*_compiler(compiler), f"-{level}", *PROGRAM_CFLAGS]
    if compiler == "clang":
        # zig cc builds -O0 as its Debug mode, with UBSan and a runtime that traps: turn it
        # off, so that -O0 is the same ordinary code as gcc's (the programs take misaligned
        # pointers to packed struct members, which UBSan reports).
        cmd += ["-fno-sanitize=undefined", "-isystem", str(NEWLIB_INCLUDE), str(source),
                *map(str, rt.objects), *LDFLAGS]  # fmt: skip
    else:
        cmd += ["--specs=nano.specs", "-nostartfiles", str(source), *map(str, rt.objects),
                *LDFLAGS, "-lc", "-lgcc"]  # fmt: skip
    _run([*cmd, "-o", str(tmp)], f"build of {source.name} ({compiler} -{level})", PROJECT_ROOT)
    tmp.replace(elf)
    return elf
