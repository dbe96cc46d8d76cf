"""The A/B bootloader: how long a boot takes, an image installation, and one power-cut case of
the sweeps (tests/test_ab_update.py), in wall time, with the virtual times beside them.

- Boot: power on, run until the bootloader's report is written (the jump to the application);
  the ratio is to starting the same application without the bootloader (from its vector
  table, as a debugger would) for the same span of virtual time, measured in the same run.
- Install: the ~1,700 flash operations of placing the light controller in bank B.
- One sweep case: restore, cut the power in the middle of the install, power on and boot,
  retry the install, reset and boot the new image in trial; the full install sweep is
  3 phases x the operations x this (each case installs up to its cut: a case at the end costs
  about twice a case in the middle, so the total is about this median times the cases).
- Scaling: 24 cases spread over the install, in one worker process and split over two, each
  worker building and booting its ECU first (as the sweep's pytest-xdist workers do).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pytest

from harness import Machine, boot, image
from harness.flashing import PowerLost, flash_controller, install
from harness.peripherals.flash import DURING

KEY = bytes(range(16))
ROUNDS = 5


def _signed(elf: Path, base: int, version: tuple[int, int, int], counter: int) -> bytes:
    return image.sign_firmware(elf, load_address=base + image.HEADER_SIZE, version=version,
                               security_counter=counter, key=KEY)


@pytest.fixture(scope="module")
def rig(firmware: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    bank_a = tmp_path_factory.mktemp("boot") / "a.bin"
    bank_a.write_bytes(_signed(firmware["elc_a"], 0x0001_0000, (1, 0, 0), 1))
    m = Machine(firmware["bootloader"], images=[(bank_a, 0x0001_0000)], faults="firmware")
    m.peripheral("SEC").provision_key(0, KEY)  # type: ignore[attr-defined]
    m.run_for(ms=300)  # the factory image confirms itself: the state every update starts from
    return {"machine": m, "start": m.snapshot(), "bank_a": bank_a,
            "b": _signed(firmware["elc_b"], 0x0010_0000, (1, 1, 0), 2)}  # fmt: skip


def _boot(m: Machine) -> float:
    """Power-cycle and run until the bootloader jumps; the virtual ms it took."""
    m.power_off()
    m.power_on()
    start = m.now_ms
    m.run_until(lambda: boot.report(m) is not None, timeout_ms=100, poll_us=100)
    return m.now_ms - start


def test_boot_through_the_bootloader(benchmark: Any, rig: dict[str, Any],
                                     firmware: dict[str, Path]) -> None:  # fmt: skip
    m: Machine = rig["machine"]
    m.restore(rig["start"])
    virtual_ms = benchmark.pedantic(lambda: _boot(m), rounds=ROUNDS, iterations=1)
    report = boot.report(m)
    assert report is not None and report.booted_bank == "A" and report.verdicts[0] == "ok"
    stats = getattr(benchmark, "stats", None)
    if not stats:
        return
    direct = Machine(firmware["elc_a"])
    times = []
    for _ in range(ROUNDS):
        direct.reset("pin")
        begin = time.perf_counter()
        direct.run_for(ms=virtual_ms)
        times.append(time.perf_counter() - begin)
    benchmark.extra_info.update(
        virtual_boot_ms=round(virtual_ms, 2),
        ratio_to_direct_start=round(float(stats.stats.median) / statistics.median(times), 2),
    )


def test_install_an_image(benchmark: Any, rig: dict[str, Any]) -> None:
    m: Machine = rig["machine"]

    def one() -> Any:
        m.restore(rig["start"])
        return install(m, rig["b"], "BANK_B")

    placed = benchmark.pedantic(one, rounds=ROUNDS, iterations=1)
    assert placed.programs > 1000 and image.verify(m.read_memory(0x0010_0000, placed.size), KEY)
    stats = getattr(benchmark, "stats", None)
    if stats:
        operations = placed.erases + placed.programs
        benchmark.extra_info.update(
            operations=operations, virtual_ms=round(placed.virtual_ms, 1),
            wall_us_per_operation=round(float(stats.stats.median) / operations * 1e6, 1),
        )  # fmt: skip


def _cut_case(m: Machine, start: Any, signed_b: bytes, index: int) -> None:
    """Restore, cut the power in the middle of operation `index` of the install, power on
    and boot, retry the install, reset and boot the new image in trial."""
    flc = flash_controller(m)
    m.restore(start)
    flc.cut_power(flc.operations + index, DURING)
    with contextlib.suppress(PowerLost):
        install(m, signed_b, "BANK_B")
    m.power_on()
    m.run_for(ms=20)
    install(m, signed_b, "BANK_B")
    m.reset_pin()
    m.run_for(ms=20)


def test_one_power_cut_case(benchmark: Any, rig: dict[str, Any]) -> None:
    m: Machine = rig["machine"]
    benchmark.pedantic(lambda: _cut_case(m, rig["start"], rig["b"], 850), rounds=ROUNDS,
                       iterations=1)  # fmt: skip
    report = boot.report(m)
    assert report is not None and (report.booted_bank, report.state) == ("B", "trial")
    stats = getattr(benchmark, "stats", None)
    if stats:
        cases = 3 * 1_720
        benchmark.extra_info.update(
            full_install_sweep_cases=cases,
            full_install_sweep_minutes=round(cases * float(stats.stats.median) / 60, 1),
        )


SCALING_CASES = 24  # spread over the whole install, as a sweep's share is


def _sweep_share(firmware: dict[str, Path], bank_a: Path, signed_b: bytes, part: int,
                 parts: int) -> str:  # fmt: skip
    """What one sweep worker does: build and boot its ECU, then run its share of the cases;
    the bank and state the last case left."""
    m = Machine(firmware["bootloader"], images=[(bank_a, 0x0001_0000)], faults="firmware")
    m.peripheral("SEC").provision_key(0, KEY)  # type: ignore[attr-defined]
    m.run_for(ms=300)
    start = m.snapshot()
    for index in range(part, SCALING_CASES, parts):
        _cut_case(m, start, signed_b, 10 + index * 70)
    report = boot.report(m)
    return f"{report.booted_bank} {report.state}" if report else "no boot"


def _sweep_over(processes: int, firmware: dict[str, Path], rig: dict[str, Any]) -> list[str]:
    # fork: the workers inherit the imported harness, as pytest-xdist's workers have it
    with ProcessPoolExecutor(processes, mp_context=get_context("fork")) as pool:
        jobs = [pool.submit(_sweep_share, firmware, rig["bank_a"], rig["b"], part, processes)
                for part in range(processes)]  # fmt: skip
        return [job.result() for job in jobs]


@pytest.mark.parametrize("processes", [1, 2])
def test_sweep_over_processes(benchmark: Any, rig: dict[str, Any], firmware: dict[str, Path],
                              processes: int) -> None:  # fmt: skip
    """A share of the install sweep (24 cases) in one process, then split over two (as
    `make sweep -n auto` splits it): the ratio of the two medians is the scaling."""
    ends = benchmark.pedantic(lambda: _sweep_over(processes, firmware, rig), rounds=3,
                              iterations=1)  # fmt: skip
    assert ends == ["B trial"] * processes
    stats = getattr(benchmark, "stats", None)
    if stats:
        _sweep_medians[processes] = float(stats.stats.median)
        benchmark.extra_info.update(cases=SCALING_CASES, cores=os.cpu_count())
        if 1 in _sweep_medians and processes > 1:
            speedup = _sweep_medians[1] / _sweep_medians[processes]
            benchmark.extra_info["speedup"] = round(speedup, 2)


_sweep_medians: dict[int, float] = {}
