"""Build the firmware stubs with the bundled zig toolchain; rebuild only what changed."""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from harness import dbc_codegen, ldf_codegen
from harness.errors import BuildError
from harness.ldf import LdfError
from harness.paths import build_dir, bundled, make_dir, require

FIRMWARE_DIR = bundled("firmware_stubs")  # the checkout's top level, or inside the package
DBC_DIR = bundled("dbc")  # the DBCs and LDFs
GENERATED = "generated"  # the build directory's folder for code generated from DBCs and LDFs

CFLAGS = (
    "-target", "thumb-freestanding-eabi", "-mcpu=cortex_m4",
    "-O2", "-g", "-std=c11", "-ffreestanding", "-nostdlib", "-fno-builtin",
    "-ffunction-sections", "-fdata-sections", "-Wall", "-Wextra", "-Werror",
)  # fmt: skip
LDFLAGS = ("-Wl,--gc-sections", "-Wl,--entry=Reset_Handler")
INCLUDE_DIRS = ("include", "hal")
COMMON = ("startup/startup.c", "hal/hal.c", "hal/mcan.c", "hal/runtime.c")
FLOAT_ABI = {
    "soft": ("-mfloat-abi=soft",),  # the default board, a Cortex-M4 without FPU
    # The Cortex-M4F board (zig's cortex_m4 has no FPU feature unless asked for).
    "hard": ("-mcpu=cortex_m4+vfp4d16sp", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"),
}


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    sources: tuple[str, ...]
    doc: str
    linker_script: str = "linker/app.ld"
    float_abi: str = "soft"
    defines: tuple[str, ...] = ()  # NAME=VALUE for the preprocessor
    dbc: str | None = None  # a DBC in dbc/ whose generated pack/unpack code is compiled in
    ldf: str | None = None  # an LDF in dbc/ whose generated C tables are compiled in

    @property
    def flags(self) -> tuple[str, ...]:
        defines = tuple(f"-D{d}" for d in self.defines)
        return (*CFLAGS, *FLOAT_ABI[self.float_abi], *defines, *LDFLAGS)


# The A/B boot code the bootloader and the applications under it share (boot/boot.h).
BOOT = ("boot/boot_flash.c", "boot/boot_probe.c", "boot/boot_sec.c", "boot/boot_state.c")
# ISO-TP and the UDS server (uds/), with the identification DIDs of the A/B boot state.
UDS = ("uds/isotp.c", "uds/uds.c", "uds/boot_dids.c")
ELC = (*COMMON, *BOOT, *UDS, "boot/boot_app.c", "elc/main.c", "elc/diag.c", "elc/e2e.c",
       "elc/lin_master.c")
TARGETS = (
    Target("app", (*COMMON, "app/main.c"), "the application: 1 ms tick, 10 kHz timer, GPIO"),
    Target("irqtest", (*COMMON, "tests/irqtest.c"), "exception-model scenarios for the tests"),
    Target("busy", (*COMMON, "tests/busy.c"), "never sleeps: measures raw execution speed"),
    Target("fputest", (*COMMON, "tests/fputest.c"), "FP context across interrupts (M4F board)",
           float_abi="hard"),
    Target("cpushapes", (*COMMON, "tests/cpushapes.c"), "instruction shapes Unicorn got wrong"),
    Target("semihost", (*COMMON, "tests/semihost.c"), "console output and exit by semihosting"),
    Target("canecho", (*COMMON, "tests/canecho.c"), "echoes every CAN frame with ID + 1"),
    Target("uartlog", (*COMMON, "hal/uart.c", "tests/uartlog.c"),
           "prints boot and a tick counter on USART1 (115200 baud)"),
    Target("elc", ELC, "the exterior-light controller on CAN FD and its LIN cluster",
           dbc="exterior_light.dbc", ldf="exterior_light.ldf"),
    Target("elc_1m", ELC, "the same on a 1 Mbit/s / 4 Mbit/s CAN bus",
           defines=("ELC_NOMINAL_BITRATE=1000000u", "ELC_DATA_BITRATE=4000000u"),
           dbc="exterior_light.dbc", ldf="exterior_light.ldf"),
    Target("bootloader", (*COMMON, "hal/uart.c", *BOOT, *UDS, "bootloader/main.c",
                          "bootloader/programming.c"),
           "the A/B bootloader: verifies and boots bank A or B, trial boots, reverts; "
           "reprogramming over UDS", linker_script="linker/bootloader.ld",
           dbc="exterior_light.dbc"),
    Target("elc_a", ELC, "the light controller as a signed image's body for bank A "
                         "(0x0001_0200), under the bootloader",
           linker_script="linker/bank_a.ld", dbc="exterior_light.dbc", ldf="exterior_light.ldf"),
    Target("elc_b", ELC, "the same for bank B (0x0010_0200)",
           linker_script="linker/bank_b.ld", dbc="exterior_light.dbc", ldf="exterior_light.ldf"),
)  # fmt: skip


def target(name: str) -> Target:
    for t in TARGETS:
        if t.name == name:
            return t
    raise BuildError(f"no firmware target {name!r}; targets: {', '.join(t.name for t in TARGETS)}")


def _description(t: Target, dbc_dir: Path, kind: str) -> Path | None:
    """The target's DBC or LDF (`kind`), if it has one."""
    name = t.dbc if kind == "DBC" else t.ldf
    if name is None:
        return None
    path = dbc_dir / name
    if not path.is_file():
        raise BuildError(f"firmware target {t.name!r}: {kind} not found: expected {path}")
    return path


def _inputs_digest(t: Target, src: Path, dbc_dir: Path) -> str:
    h = hashlib.sha256(" ".join(t.flags).encode())
    files = [src / s for s in (*t.sources, t.linker_script)]
    for f in files:
        if not f.is_file():
            raise BuildError(f"firmware target {t.name!r}: source file not found: expected {f}")
    dbc = _description(t, dbc_dir, "DBC")
    if dbc is not None:  # the generated code: the DBC, the generator's version and options
        h.update(dbc_codegen.fingerprint(dbc))
    ldf = _description(t, dbc_dir, "LDF")
    if ldf is not None:  # the generated tables: the LDF, ldfparser's version, the generator
        h.update(ldf_codegen.fingerprint(ldf))
    header_dirs = {*(src / d for d in INCLUDE_DIRS), *((src / s).parent for s in t.sources)}
    for d in sorted(header_dirs):
        files += sorted(d.glob("*.h"))  # the include path's and the sources' own headers
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def build(
    names: Iterable[str] | None = None,
    *,
    src: Path = FIRMWARE_DIR,
    dbc_dir: Path = DBC_DIR,
    out: Path | None = None,
    force: bool = False,
) -> dict[str, Path]:
    """Build the named targets (all by default); returns name -> ELF path.

    A target is rebuilt when any of its sources, the headers, the flags, its DBC or its LDF
    changed; a target with a DBC is compiled with C pack/unpack code generated from it, one
    with an LDF with the cluster's C tables, both into `out/generated/`. A file lock makes
    concurrent builds (pytest-xdist workers) wait for each other.
    """
    chosen = [target(n) for n in names] if names is not None else list(TARGETS)
    require(src, "the firmware sources (firmware_stubs/)")
    out = make_dir(out or build_dir() / "firmware")
    results: dict[str, Path] = {}
    with open(out / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for t in chosen:
            elf = out / f"{t.name}.elf"
            stamp = out / f"{t.name}.inputs"
            digest = _inputs_digest(t, src, dbc_dir)
            if force or not elf.exists() or not stamp.exists() or stamp.read_text() != digest:
                dbc, ldf = (_description(t, dbc_dir, kind) for kind in ("DBC", "LDF"))
                _compile(t, src, elf, dbc, ldf)
                stamp.write_text(digest)
            results[t.name] = elf
    return results


def _compile(t: Target, src: Path, elf: Path, dbc: Path | None, ldf: Path | None) -> None:
    tmp = elf.with_suffix(f".{os.getpid()}.tmp")
    include_dirs = [src / d for d in INCLUDE_DIRS]
    sources = [src / s for s in t.sources]
    generated: list[tuple[Path, Path]] = []
    if dbc is not None:
        generated.append(dbc_codegen.generate(dbc, elf.parent / GENERATED))
    if ldf is not None:
        try:
            generated.append(ldf_codegen.generate(ldf, elf.parent / GENERATED))
        except LdfError as err:  # a bad LDF, or names that make no C names
            message = f"firmware target {t.name!r}: cannot generate C tables: {err}"
            raise BuildError(message) from err
    for header, source in generated:
        if header.parent not in include_dirs:
            include_dirs.append(header.parent)
        sources.append(source)
    cmd = [
        sys.executable, "-m", "ziglang", "cc", *t.flags,
        *(f"-I{d}" for d in include_dirs),
        "-T", str(src / t.linker_script), "-o", str(tmp),
        *(str(s) for s in sources),
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildError(f"firmware target {t.name!r} failed to build:\n{result.stderr.strip()}")
    tmp.replace(elf)
