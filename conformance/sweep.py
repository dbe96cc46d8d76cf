"""Differential conformance sweep: the harness's core against QEMU on csmith's programs.

Every program (a fixed csmith seed) is built by zig's clang and by arm-none-eabi-gcc at -O0,
-O1, -O2, -Os and -O3. Each ELF runs on QEMU's mps2-an386 (the reference) and on the harness
in each variant: the default board as is, with a SysTick of an odd period that lands on
arbitrary instructions and clobbers every caller-saved register and the flags, and (on the
FPU board) the same with s0-s15 and FPSCR clobbered and s0-s31/FPSCR checked after main.
Every run of a build must print exactly what QEMU printed and exit with its status.

    .venv/bin/python -m conformance.sweep --programs 300 --jobs 2

Exit status 1 on any divergence (or a build that failed); timeouts are listed, not counted.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
import traceback
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from conformance import toolchain
from conformance.runners import (
    ALL_VARIANTS,
    ERROR,
    EXIT,
    FAULT,
    TIMEOUT,
    RunResult,
    Variant,
    run_harness,
    run_qemu,
)

DEFAULT_BUDGET_MS = 2000.0  # virtual time per harness run (240 M instructions at 120 MHz)
DEFAULT_QEMU_TIMEOUT_S = 2.0  # wall time of the reference run (programs that end take ~0.1 s)


@dataclass(frozen=True, slots=True)
class BuildSpec:
    seed: int
    compiler: str
    level: str
    source: Path
    variants: tuple[Variant, ...]
    budget_ms: float
    qemu_timeout_s: float

    @property
    def name(self) -> str:
        return f"seed {self.seed} {self.compiler} -{self.level}"


@dataclass(frozen=True, slots=True)
class Divergence:
    seed: int
    compiler: str
    level: str
    variant: str
    reason: str
    qemu: str  # an excerpt around the first difference
    harness: str
    files: str = ""  # where the full outputs were saved

    def report(self) -> str:
        return (f"DIVERGENCE seed {self.seed} {self.compiler} -{self.level} [{self.variant}]: "
                f"{self.reason}\n  QEMU:    {self.qemu}\n  harness: {self.harness}"
                + (f"\n  full outputs: {self.files}" if self.files else ""))  # fmt: skip


@dataclass(slots=True)
class BuildResult:
    spec: BuildSpec
    status: str = "ok"  # ok | timeout | build-error
    detail: str = ""
    runs: int = 0
    divergences: list[Divergence] = field(default_factory=list)
    timeouts: list[str] = field(default_factory=list)  # "qemu" or the harness variants
    reference_exit: int | None = None
    wall_s: float = 0.0
    cycles: int = 0  # the plain harness run's virtual cycles


def _first_difference(a: str, b: str) -> tuple[str, str]:
    """One line from each side: the first line where they differ (with its number)."""
    la, lb = a.split("\n"), b.split("\n")
    for i in range(max(len(la), len(lb))):
        x = la[i] if i < len(la) else "<end of output>"
        y = lb[i] if i < len(lb) else "<end of output>"
        if x != y:
            return f"line {i + 1}: {x!r}", f"line {i + 1}: {y!r}"
    return "(same text)", "(same text)"


def _save(spec: BuildSpec, variant: str, qemu: str, harness: str) -> str:
    d = toolchain.work_dir() / "divergences"
    d.mkdir(parents=True, exist_ok=True)
    stem = f"seed{spec.seed}-{spec.compiler}-{spec.level}-{variant}"
    (d / f"{stem}.qemu.txt").write_text(qemu)
    (d / f"{stem}.harness.txt").write_text(harness)
    return str(d / f"{stem}.{{qemu,harness}}.txt")


FAULT_EXITS = {128 + n for n in (3, 4, 5, 6)}  # the runtime's exit from HardFault .. UsageFault


def faulted_alike(ref: RunResult, run: RunResult) -> bool:
    """QEMU ran into a fault handler right where the harness stopped with a fault (the harness
    stops the run on a fault instead of taking the firmware's handler)."""
    if ref.status != EXIT or ref.exit_code not in FAULT_EXITS:
        return False
    rest = ref.output[len(run.output) :] if ref.output.startswith(run.output) else ""
    return rest.lstrip().startswith("*** unexpected exception")


def judge(spec: BuildSpec, variant: Variant, ref: RunResult, run: RunResult) -> Divergence | None:
    """None when the harness run matches the reference, else what differs."""
    reason = ""
    if run.status == TIMEOUT:
        if ref.output.startswith(run.output):
            return None  # out of budget, and right so far: a timeout, not a divergence
        reason = f"timed out ({run.detail}) after printing something else"
    elif run.status == FAULT and faulted_alike(ref, run):
        return None  # QEMU took a fault exception where the harness stopped with FirmwareFault
    elif run.status != EXIT:
        reason = f"{run.status}: {run.detail}"
    elif run.output != ref.output:
        reason = "output differs"
    elif run.exit_code != ref.exit_code:
        reason = f"exit status {run.exit_code}, QEMU {ref.exit_code}"
    elif variant.tick_reload and run.cycles > 10 * variant.tick_reload and run.ticks == 0:
        reason = f"the tick never fired in {run.cycles} cycles (the variant tested nothing)"
    if not reason:
        return None
    q, h = _first_difference(ref.output, run.output)
    files = _save(spec, variant.name, ref.output, run.output)
    return Divergence(spec.seed, spec.compiler, spec.level, variant.name, reason, q, h, files)


def run_build(spec: BuildSpec) -> BuildResult:
    """Build one ELF and run it everywhere. Never raises: a crash becomes a divergence."""
    start = time.perf_counter()
    result = BuildResult(spec)
    try:
        elf = toolchain.build(spec.source, spec.compiler, spec.level)
    except toolchain.ToolchainError as err:
        result.status, result.detail = "build-error", str(err)
        result.wall_s = time.perf_counter() - start
        return result
    ref = run_qemu(elf, spec.qemu_timeout_s)
    result.runs += 1
    result.reference_exit = ref.exit_code
    if ref.status == TIMEOUT:
        result.status, result.detail = "timeout", ref.detail
        result.timeouts.append("qemu")
    elif ref.status != EXIT:
        result.status, result.detail = "build-error", f"reference run: {ref.detail}"
    else:
        for variant in spec.variants:
            try:
                run = run_harness(elf, variant, spec.budget_ms)
            except Exception as err:  # a harness crash is a finding, not a sweep crash
                tb = traceback.format_exc(limit=4).strip().replace("\n", "\n    ")
                run = RunResult(ERROR, "", None, f"{type(err).__name__}: {err}\n    {tb}")
            result.runs += 1
            if variant.name == "plain":
                result.cycles = run.cycles
            if run.status == TIMEOUT and ref.output.startswith(run.output):
                result.timeouts.append(variant.name)
            divergence = judge(spec, variant, ref, run)
            if divergence:
                result.divergences.append(divergence)
        if result.timeouts:
            result.status = "timeout"
    result.wall_s = time.perf_counter() - start
    return result


def _generate(seed: int) -> Path:
    return toolchain.generate(seed)


def plan(
    seeds: Sequence[int],
    compilers: Sequence[str] = toolchain.COMPILERS,
    levels: Sequence[str] = toolchain.LEVELS,
    variants: Sequence[Variant] | None = None,
    *,
    budget_ms: float = DEFAULT_BUDGET_MS,
    qemu_timeout_s: float = DEFAULT_QEMU_TIMEOUT_S,
    jobs: int = 1,
) -> list[BuildSpec]:
    """Generate the programs (in parallel), build the runtimes, and list the builds."""
    toolchain.check_tools()
    chosen = tuple(variants) if variants is not None else ALL_VARIANTS
    if jobs > 1:
        with multiprocessing.Pool(jobs) as pool:
            sources = pool.map(_generate, seeds)
    else:
        sources = [_generate(s) for s in seeds]
    for c in compilers:
        toolchain.runtime(c)
    return [BuildSpec(seed, c, lvl, src, chosen, budget_ms, qemu_timeout_s)
            for seed, src in zip(seeds, sources, strict=True)
            for c in compilers for lvl in levels]  # fmt: skip


def execute(specs: Sequence[BuildSpec], jobs: int = 1) -> Iterator[BuildResult]:
    """Run the builds, `jobs` at a time; results in completion order."""
    if jobs <= 1:
        yield from map(run_build, specs)
        return
    with multiprocessing.Pool(jobs) as pool:
        yield from pool.imap_unordered(run_build, specs, chunksize=1)


@dataclass(slots=True)
class Summary:
    programs: int = 0
    builds: int = 0
    runs: int = 0
    divergences: list[Divergence] = field(default_factory=list)
    timeouts: list[str] = field(default_factory=list)
    build_errors: list[str] = field(default_factory=list)
    nonzero_reference: int = 0
    wall_s: float = 0.0
    build_wall_s: float = 0.0  # summed over builds: the cost of one build is this / builds
    cycles: int = 0

    def add(self, r: BuildResult) -> None:
        self.builds += 1
        self.runs += r.runs
        self.build_wall_s += r.wall_s
        self.cycles += r.cycles
        self.divergences += r.divergences
        if r.status == "build-error":
            self.build_errors.append(f"{r.spec.name}: {r.detail}")
        if r.timeouts:
            self.timeouts.append(f"{r.spec.name} ({', '.join(r.timeouts)})")
        if r.reference_exit:
            self.nonzero_reference += 1

    @property
    def ok(self) -> bool:
        return not self.divergences and not self.build_errors

    def report(self) -> str:
        lines = [f"  timeout: {t}" for t in self.timeouts]
        lines += [f"  BUILD ERROR {e}" for e in self.build_errors]
        per_build = self.build_wall_s / self.builds if self.builds else 0.0
        lines += [
            f"programs: {self.programs}  builds: {self.builds}  runs: {self.runs}  "
            f"divergences: {len(self.divergences)}  timeouts: {len(self.timeouts)}  "
            f"build errors: {len(self.build_errors)}  wall time: {self.wall_s:.0f} s "
            f"({per_build:.2f} s per build on one core; "
            f"{self.cycles / max(self.builds, 1) / 1e6:.1f} M cycles per plain run)"
        ]
        if self.nonzero_reference:
            lines.append(f"({self.nonzero_reference} builds exit non-zero on QEMU too)")
        return "\n".join(lines)


def sweep(
    specs: Sequence[BuildSpec], jobs: int = 1, *, echo: bool = False, programs: int | None = None
) -> Summary:
    start = time.perf_counter()
    summary = Summary(programs=programs if programs is not None else len({s.seed for s in specs}))
    step = max(1, len(specs) // 20)
    for r in execute(specs, jobs):
        summary.add(r)
        if echo:
            for d in r.divergences:
                print(d.report(), flush=True)
            if summary.builds % step == 0 or summary.builds == len(specs):
                elapsed = time.perf_counter() - start
                print(f"[{summary.builds}/{len(specs)} builds] {len(summary.divergences)} "
                      f"divergences, {len(summary.timeouts)} timeouts, {elapsed:.0f} s",
                      file=sys.stderr, flush=True)  # fmt: skip
    summary.wall_s = time.perf_counter() - start
    return summary


def _seed_list(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds += range(int(lo), int(hi or lo) + 1)
    return seeds


def _choice_list(text: str, allowed: Iterable[str], what: str) -> list[str]:
    items = [t for t in text.split(",") if t]
    bad = [t for t in items if t not in allowed]
    if bad:
        raise SystemExit(f"error: unknown {what} {', '.join(bad)}; one of {', '.join(allowed)}")
    return items


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m conformance.sweep", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--programs", type=int, default=300, help="number of csmith seeds (300)")
    p.add_argument("--first-seed", type=int, default=1, help="seeds are first..first+N-1 (1)")
    p.add_argument("--seeds", help="explicit seeds instead, e.g. 1,5,10-20")
    p.add_argument("--jobs", type=int, default=2, help="parallel builds (2)")
    p.add_argument("--compilers", default=",".join(toolchain.COMPILERS))
    p.add_argument("--levels", default=",".join(toolchain.LEVELS))
    p.add_argument("--variants", default=",".join(v.name for v in ALL_VARIANTS),
                   help="harness variants (those whose board exists)")  # fmt: skip
    p.add_argument("--budget-ms", type=float, default=DEFAULT_BUDGET_MS,
                   help="virtual time per harness run (%(default)g ms)")  # fmt: skip
    p.add_argument("--qemu-timeout", type=float, default=DEFAULT_QEMU_TIMEOUT_S,
                   help="wall time of the QEMU run (%(default)g s)")  # fmt: skip
    args = p.parse_args(argv)
    seeds = (_seed_list(args.seeds) if args.seeds
             else list(range(args.first_seed, args.first_seed + args.programs)))  # fmt: skip
    compilers = _choice_list(args.compilers, toolchain.COMPILERS, "compiler")
    levels = _choice_list(args.levels, toolchain.LEVELS, "level")
    names = _choice_list(args.variants, [v.name for v in ALL_VARIANTS], "variant")
    variants = [v for v in ALL_VARIANTS if v.name in names]
    try:
        specs = plan(seeds, compilers, levels, variants, budget_ms=args.budget_ms,
                     qemu_timeout_s=args.qemu_timeout, jobs=args.jobs)  # fmt: skip
    except (toolchain.MissingTools, toolchain.ToolchainError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"conformance sweep: {toolchain.csmith_version()}, {len(seeds)} programs "
          f"(seeds {seeds[0]}..{seeds[-1]}), {' '.join(compilers)} at "
          f"{' '.join('-' + lv for lv in levels)}, QEMU + harness variants "
          f"{' '.join(v.name for v in variants)}, {args.jobs} jobs", flush=True)  # fmt: skip
    summary = sweep(specs, args.jobs, echo=True, programs=len(seeds))
    print(summary.report())
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
