"""The emulated core against QEMU on csmith's random programs: the CI sample of the sweep.

A fixed sample of programs, built by zig's clang and by arm-none-eabi-gcc at every level, runs
on QEMU's mps2-an386 and on the harness (plain, with an interrupting tick, and with the tick
clobbering the FP registers on the Cortex-M4F board); every run must print what QEMU printed.
`make conformance` runs the full sweep. The Debian tools are required: a missing one fails.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness import FirmwareFault, Machine
from harness.boards import ASILB_M4F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `conformance/` is a top-level directory, not an installed package
    sys.path.insert(0, str(ROOT))

from conformance import runners, sweep, toolchain  # noqa: E402

# Programs that end within a few hundred thousand instructions (csmith 2.3.0, the sweep's
# options). Chosen once from the full sweep's results; csmith's output is fixed by the seed.
SEEDS = (2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 17, 18, 19, 20, 21, 22, 23)
QEMU_TIMEOUT_S = 20.0  # the sample's programs take ~0.1 s; a slow CI machine must not drop one


def _require_tools() -> None:
    try:
        toolchain.check_tools()
    except toolchain.MissingTools as err:
        pytest.fail(str(err), pytrace=False)


@pytest.mark.parametrize("level", toolchain.LEVELS)
@pytest.mark.parametrize("compiler", toolchain.COMPILERS)
def test_sample_matches_qemu(compiler: str, level: str) -> None:
    _require_tools()
    specs = sweep.plan(SEEDS, [compiler], [level], qemu_timeout_s=QEMU_TIMEOUT_S)
    summary = sweep.sweep(specs)
    report = "\n".join([d.report() for d in summary.divergences] + [summary.report()])
    print(report)
    assert summary.builds == len(SEEDS)
    assert not summary.divergences, report
    assert not summary.build_errors, report
    assert not summary.timeouts, report  # the sample is chosen to finish: a timeout is news
    assert summary.runs == len(SEEDS) * (1 + len(runners.ALL_VARIANTS))


@pytest.mark.parametrize("compiler", toolchain.COMPILERS)
def test_runtime_tick_and_fp_canaries_on_qemu(compiler: str, tmp_path: Path) -> None:
    """The runtime's own check, against the reference: on QEMU too, a program interrupted by
    the clobbering tick, with the FPU on and the canaries checked, prints exactly what it
    prints without them. So a harness divergence in those variants is the harness's."""
    _require_tools()
    elf = toolchain.build(toolchain.generate(SEEDS[0]), compiler, "O2", tmp_path)
    ref = runners.run_qemu(elf, QEMU_TIMEOUT_S)
    assert ref.status == runners.EXIT and ref.exit_code == 0, ref.detail
    assert ref.output.endswith("\n") and "checksum = " in ref.output
    for tick in (997, 9973):
        values = {"conformance_tick_reload": tick, "conformance_fp_clobber": 1}
        patched = runners.patch_elf(elf, tmp_path / f"tick{tick}.elf", values)
        run = runners.run_qemu(patched, QEMU_TIMEOUT_S)
        assert (run.status, run.exit_code) == (runners.EXIT, 0), run.detail
        assert run.output == ref.output


def test_fp_corruption_is_reported() -> None:
    """The canary check is live: change the expected value of s0 after the runtime loaded
    the canaries, and the run reports s0."""
    _require_tools()
    elf = toolchain.build(toolchain.generate(SEEDS[0]), "clang", "O1")
    m = Machine(elf, board=ASILB_M4F)
    m.write_symbol("conformance_tick_reload", 991)
    m.write_symbol("conformance_fp_clobber", 1)
    m.run_until(lambda: m.read_symbol("conformance_ticks") != 0, timeout_ms=10)  # past the fill
    canaries = m.read_symbol("conformance_fp_canaries")
    assert isinstance(canaries, bytes)
    m.write_symbol("conformance_fp_canaries", b"\0" * 4 + canaries[4:])
    assert m.run_to_exit(timeout_ms=2000) == 0
    assert "FP context corrupted: s0 = 0xC0DE0000\n" in m.semihost_output


def test_unaligned_ldm_faults_as_on_qemu() -> None:
    """The divergence the full sweep found (seed 163, gcc, every level): `ldmia r2, {r0-r2}`
    with r2 = 0x20000076 takes a UsageFault on QEMU, as ARMv7-M requires; the harness used to
    perform the access. Now both stop there, with the same output before it."""
    _require_tools()
    specs = sweep.plan([163], ["gcc"], list(toolchain.LEVELS), [runners.PLAIN],
                       qemu_timeout_s=QEMU_TIMEOUT_S)  # fmt: skip
    summary = sweep.sweep(specs)
    assert not summary.divergences, "\n".join(d.report() for d in summary.divergences)
    assert summary.runs == 2 * len(toolchain.LEVELS)
    elf = toolchain.build(toolchain.generate(163), "gcc", "O2")
    with pytest.raises(FirmwareFault, match=r"unaligned access \(UsageFault UNALIGNED"):
        Machine(elf).run_to_exit(timeout_ms=2000)
