"""Running one ELF: on QEMU (the reference) and on the harness in each variant."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.elffile import ELFFile

from harness import Machine
from harness.board import Board
from harness.boards import ASILB_M4F, DEFAULT_BOARD
from harness.errors import FirmwareFault, VirtualTimeout

QEMU_COMMAND = (
    "qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none", "-serial", "none",
    "-semihosting-config", "enable=on,target=native", "-kernel",
)  # fmt: skip

# How a run ended. "exit": through SYS_EXIT; "timeout": out of budget (wall time on QEMU,
# virtual time on the harness); "fault": the harness stopped on a firmware fault; "error": the
# run could not be judged (QEMU failed to start, the harness raised something else).
EXIT, TIMEOUT, FAULT, ERROR = "exit", "timeout", "fault", "error"


@dataclass(frozen=True, slots=True)
class Variant:
    """One way of running the ELF on the harness."""

    name: str
    board: Board
    tick_reload: int = 0  # SysTick period in cycles; 0 = no tick
    fp_clobber: bool = False  # FPU enabled, canaries in s0-s31/FPSCR, handler clobbers s0-s15


PLAIN = Variant("plain", DEFAULT_BOARD)
TICK = Variant("tick", DEFAULT_BOARD, tick_reload=997)
TICK_FPU = Variant("tick-fpu", ASILB_M4F, tick_reload=991, fp_clobber=True)
ALL_VARIANTS = (PLAIN, TICK, TICK_FPU)


@dataclass(frozen=True, slots=True)
class RunResult:
    status: str
    output: str
    exit_code: int | None
    detail: str = ""  # the fault's message, the error, the ticks taken
    cycles: int = 0
    ticks: int = 0
    wall_s: float = 0.0


def run_qemu(elf: Path, timeout_s: float) -> RunResult:
    """The reference run. QEMU serves the console calls on its stderr (no chardev is given)
    and exits with the program's status."""
    try:
        proc = subprocess.run([*QEMU_COMMAND, str(elf)], capture_output=True, timeout=timeout_s,
                              check=False, stdin=subprocess.DEVNULL)  # fmt: skip
    except subprocess.TimeoutExpired as err:
        partial = err.stderr.decode("utf-8", "replace") if err.stderr else ""
        return RunResult(TIMEOUT, partial, None, f"no exit within {timeout_s:g} s of wall time")
    output = proc.stderr.decode("utf-8", "replace")
    if proc.stdout.strip():
        return RunResult(ERROR, output, proc.returncode, f"QEMU stdout: {proc.stdout[:500]!r}")
    return RunResult(EXIT, output, proc.returncode)


def run_harness(elf: Path, variant: Variant, budget_ms: float) -> RunResult:
    m = Machine(elf, board=variant.board)
    if variant.tick_reload:
        m.write_symbol("conformance_tick_reload", variant.tick_reload)
    if variant.fp_clobber:
        m.write_symbol("conformance_fp_clobber", 1)
    status, code, detail = EXIT, None, ""
    try:
        code = m.run_to_exit(timeout_ms=budget_ms)
    except VirtualTimeout:
        status, detail = TIMEOUT, f"no exit within {budget_ms:g} ms of virtual time"
    except FirmwareFault as err:
        status, detail = FAULT, str(err)
    ticks = m.read_symbol("conformance_ticks")
    return RunResult(status, m.semihost_output, code, detail, m.clock.cycles,
                     ticks if isinstance(ticks, int) else 0)  # fmt: skip


def patch_elf(elf: Path, out: Path, values: dict[str, int]) -> Path:
    """A copy of `elf` with 32-bit symbols in its loaded image set to `values`: the same
    configuration the harness writes with write_symbol, for emulators that only take a file."""
    data = bytearray(elf.read_bytes())
    with open(elf, "rb") as f:
        image = ELFFile(f)
        symtab = image.get_section_by_name(".symtab")
        for name, value in values.items():
            syms = symtab.get_symbol_by_name(name) if symtab else None
            if not syms:
                raise KeyError(f"{elf.name} has no symbol {name}")
            address = syms[0]["st_value"]
            for seg in image.iter_segments():
                start = seg["p_vaddr"]
                if seg["p_type"] == "PT_LOAD" and start <= address < start + seg["p_filesz"]:
                    offset = seg["p_offset"] + address - start
                    data[offset : offset + 4] = value.to_bytes(4, "little")
                    break
            else:
                raise KeyError(f"{name} is not in a loaded segment of {elf.name}")
    out.write_bytes(bytes(data))
    return out
