"""The A/B update life cycle under power loss: the bootloader (firmware_stubs/bootloader) and
the light controller on the emulated ECU, images placed by `harness.flashing.install`, power
cut before, during (torn) and after flash operations (`FlashController.cut_power`).

The invariant after every cut and `power_on()`: the ECU boots, and what it boots is an
authentic image (its CMAC verified here in Python with the key, not by the firmware) from
the bank the boot report names; then retrying reaches the state the interrupted step aimed at.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import Machine, boot, image, load_elf
from harness.flashing import FlashingError, PowerLost, flash_controller, install
from harness.peripherals.flash import AFTER, BEFORE, DURING

KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
PHASES = (BEFORE, DURING, AFTER)
BANK = {"A": 0x0001_0000, "B": 0x0010_0000}
BANK_SIZE = 960 * 1024
BOOT_MS = 300  # bootloader and the light controller's start-up checks (100 ms) with margin
REVERT_MS = 400  # a failing trial boot until its watchdog reset
# `make sweep` cuts at every operation; the suite at a deterministic sample of the long steps
FULL_SWEEP = os.environ.get("HARNESS_FULL_SWEEP") == "1"
PARTS = 16 if FULL_SWEEP else 1  # the long sweep in parts, so pytest-xdist spreads it


def sign(elf: Path, bank: str, version: tuple[int, int, int], counter: int,
         patch: dict[str, bytes] | None = None) -> bytes:  # fmt: skip
    load = BANK[bank] + image.HEADER_SIZE
    body = bytearray(image.body_of(elf, load))
    for name, value in (patch or {}).items():  # change a constant before signing
        offset = load_elf(elf).symbol(name).address - load
        body[offset : offset + len(value)] = value
    return image.sign(bytes(body), load_address=load, version=version,
                      security_counter=counter, key=KEY)  # fmt: skip


@pytest.fixture(scope="module")
def images(firmware: dict[str, Path]) -> dict[str, bytes]:
    return {
        "A1": sign(firmware["elc_a"], "A", (1, 0, 0), 1),
        "B2": sign(firmware["elc_b"], "B", (1, 1, 0), 2),
        # a light controller whose self-test fails: it never confirms itself
        "B_failing": sign(firmware["elc_b"], "B", (1, 2, 0), 2, {"elc_selftest": b"FAIL"}),
    }


@pytest.fixture(scope="module")
def ecu_factory(firmware: dict[str, Path], images: dict[str, bytes],
                tmp_path_factory: pytest.TempPathFactory) -> Callable[[], Machine]:  # fmt: skip
    bank_a = tmp_path_factory.mktemp("ab") / "a.bin"
    bank_a.write_bytes(images["A1"])

    def make() -> Machine:
        m = Machine(firmware["bootloader"], images=[(bank_a, BANK["A"])], faults="firmware")
        sec = m.peripheral("SEC")
        sec.provision_key(0, KEY)  # type: ignore[attr-defined]
        sec.lock()  # type: ignore[attr-defined]
        m.run_for(ms=BOOT_MS)
        assert running(m) == ("A", "confirmed")
        return m

    return make


def running(m: Machine) -> tuple[str, str]:
    """(bank, state) of what runs now, after checking that it is authentic: the bank's image
    verifies with the key, and the core executes inside that bank. The state is the newest
    record's (trial until the image confirms itself)."""
    report = boot.report(m)
    assert report is not None and report.booted_bank is not None, m.uart("USART1").text
    base = BANK[report.booted_bank]
    assert image.verify(m.read_memory(base, BANK_SIZE), KEY), f"bank {report.booted_bank}"
    assert base <= m.cpu.pc < base + BANK_SIZE
    stored = boot.records(m)
    if not stored:  # factory state: nothing written yet
        return report.booted_bank, report.state
    state = "trial" if stored[-1].trial == report.booted_bank else "confirmed" if (
        stored[-1].confirmed == report.booted_bank) else "neither"  # fmt: skip
    return report.booted_bank, state


def power_cycle(m: Machine, ms: float = BOOT_MS) -> tuple[str, str]:
    m.power_off()
    m.power_on()
    m.run_for(ms=ms)
    return running(m)


def settle(m: Machine, goal: tuple[str, str], boots: int = 5) -> tuple[str, str]:
    """Power-cycle until the ECU reaches `goal` (trial boots confirm or revert), at most
    `boots` times; the state it ended in."""
    state = running(m)
    for _ in range(boots):
        if state == goal:
            break
        state = power_cycle(m)
    return state


# ---- the life cycle without cuts ----


def test_update_trial_confirm_and_rollback_protection(
    ecu_factory: Callable[[], Machine], images: dict[str, bytes]
) -> None:
    m = ecu_factory()
    placed = install(m, images["B2"], "BANK_B")
    assert placed.erases == -(-placed.size // 0x4000) and placed.programs > 1000  # 16 KB sectors
    assert running(m) == ("A", "confirmed")  # installing does not switch banks
    m.reset_pin()
    m.run_for(ms=BOOT_MS)
    assert running(m) == ("B", "confirmed")  # trial boot, then it confirmed itself
    trail = [(r.confirmed, r.trial, r.attempts, r.counter) for r in boot.records(m)]
    assert trail[-2:] == [("A", "B", 1, 1), ("B", None, 0, 2)]  # the counter rose on confirm
    report = boot.report(m)
    assert report is not None and report.stored_counter == 1  # as the bootloader saw it
    assert power_cycle(m) == ("B", "confirmed")
    report = boot.report(m)
    assert report is not None and report.verdicts == ("old counter", "ok")  # A may not return


# ---- power loss at every flash operation of each step ----


def _sweep(ecu: Machine, step: Callable[[Machine], None], goal: tuple[str, str],
           sample: Callable[[int], Iterable[int]] = range) -> int:  # fmt: skip
    """Cut the power before, during and after each flash operation `step` performs (or those
    `sample` picks from their count); after each cut the ECU boots an authentic image, and
    settles in `goal`. Returns the number of operations the step performs."""
    flc = flash_controller(ecu)
    start = ecu.snapshot()
    first = flc.operations
    step(ecu)
    count = flc.operations - first
    assert count > 0
    for index in sample(count):
        for phase in PHASES:
            ecu.restore(start)
            flc.cut_power(first + index, phase)
            with contextlib.suppress(PowerLost):
                step(ecu)
            assert not ecu.powered, (index, phase)
            ecu.power_on()
            ecu.run_for(ms=BOOT_MS)
            running(ecu)  # authentic, whatever the cut left
            step(ecu)  # the retried step completes
            assert settle(ecu, goal) == goal, (index, phase)
    return count


def test_power_loss_at_the_trial_boot_confirm_and_counter_update(
    ecu_factory: Callable[[], Machine], images: dict[str, bytes]
) -> None:
    m = ecu_factory()
    install(m, images["B2"], "BANK_B")

    def boot_new_image(ecu: Machine) -> None:
        # a warm reset: the bootloader writes the trial record, the image boots, checks
        # itself, and writes the confirm record (which raises the stored counter)
        ecu.reset_pin()
        ecu.run_for(ms=BOOT_MS)

    operations = _sweep(m, boot_new_image, ("B", "confirmed"))
    assert operations == 8  # two records of four program units


@pytest.mark.parametrize("part", range(PARTS))
def test_power_loss_while_installing(ecu_factory: Callable[[], Machine],
                                     images: dict[str, bytes], part: int) -> None:  # fmt: skip
    m = ecu_factory()

    def install_and_boot(ecu: Machine) -> None:
        # what an update tool does: install B unless B already runs (a cut in the trial
        # boot's records leaves B installed and booting), then reset
        if running(ecu)[0] != "B":
            install(ecu, images["B2"], "BANK_B")
        ecu.reset_pin()
        ecu.run_for(ms=BOOT_MS)

    def sample(count: int) -> Iterable[int]:
        if FULL_SWEEP:  # every PARTS-th operation, from `part`
            return range(part, count, PARTS)
        # the erase, the first units, every 401st, and the last units (the CMAC trailer) and
        # the records of the trial boot and confirm that follow (the last 8 operations)
        return sorted({0, 1, 2, *range(0, count, 401), *range(count - 30, count)})

    operations = _sweep(m, install_and_boot, ("B", "confirmed"), sample)
    assert operations > 1000  # (units of all ones are not programmed)


def test_power_loss_while_reverting(ecu_factory: Callable[[], Machine],
                                    images: dict[str, bytes]) -> None:  # fmt: skip
    m = ecu_factory()
    install(m, images["B_failing"], "BANK_B")

    def try_and_give_up(ecu: Machine) -> None:
        # three trial boots, each ended by the watchdog (the image stops serving it when
        # its self-test fails), then the revert record
        ecu.reset_pin()
        ecu.run_for(ms=4 * REVERT_MS)

    def sample(count: int) -> Iterable[int]:
        # the first trial record and the revert record (`make sweep`: all 16 operations)
        return range(count) if FULL_SWEEP else [0, 1, 2, 3, *range(count - 4, count)]

    operations = _sweep(m, try_and_give_up, ("A", "confirmed"), sample)
    assert operations == 16  # three trial records and the revert record
    report = boot.report(m)
    assert report is not None and report.verdicts[1] == "rejected"


def test_an_image_that_never_confirms_reverts_after_three_watchdog_resets(
    ecu_factory: Callable[[], Machine], images: dict[str, bytes]
) -> None:
    m = ecu_factory()
    install(m, images["B_failing"], "BANK_B")
    m.reset_pin()
    seen = []
    for _ in range(40):
        m.run_for(ms=REVERT_MS / 4)
        report = boot.report(m)
        if report is not None and (not seen or seen[-1] != report):
            seen.append(report)
    trials = [(r.booted_bank, r.state, r.attempts) for r in seen]
    assert trials[:3] == [("B", "trial", 1), ("B", "trial", 2), ("B", "trial", 3)]
    assert all(r.reset_causes & 4 for r in seen[1:])  # SYSCTL.RSTCAUSE.WDG
    final = seen[-1]
    assert (final.booted_bank, final.state, final.reverted_bank) == ("A", "confirmed", "B")
    assert "reverted" in final.events
    assert "reverted after 3 attempts" in m.uart("USART1").text
    assert power_cycle(m) == ("A", "confirmed")  # and it stays reverted


@settings(max_examples=12, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(first=st.tuples(st.integers(0, 1800), st.sampled_from(PHASES)),
       second=st.tuples(st.integers(0, 1800), st.sampled_from(PHASES)))  # fmt: skip
def test_two_chained_power_losses_during_an_update(
    update_start: StartingPoint, images: dict[str, bytes],
    first: tuple[int, str], second: tuple[int, str],
) -> None:  # fmt: skip
    """Cut the power at one operation of install + trial boot + confirm, power up, retry, and
    cut again at an operation of the retry: the ECU always boots an authentic image, and a
    last retry completes the update."""
    ecu = update_start.machine
    ecu.restore(update_start.snapshot)
    flc = flash_controller(ecu)

    def update(cut: tuple[int, str] | None) -> None:
        """What an update tool does: install B unless B already runs, then reset."""
        if cut is not None:
            flc.cut_power(flc.operations + cut[0], cut[1])
        with contextlib.suppress(PowerLost):
            if running(ecu)[0] != "B":
                install(ecu, images["B2"], "BANK_B")
            ecu.reset_pin()
            ecu.run_for(ms=BOOT_MS)
        if not ecu.powered:
            ecu.power_on()
            ecu.run_for(ms=BOOT_MS)
        running(ecu)  # authentic, whatever the cut left
        flc.cancel_cut()  # a cut the step never reached

    update(first)
    update(second)
    update(None)
    assert settle(ecu, ("B", "confirmed")) == ("B", "confirmed")


class StartingPoint:
    """An ECU running bank A, confirmed, and its snapshot (short to print)."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self.snapshot = machine.snapshot()

    def __repr__(self) -> str:
        return "<ECU: bank A confirmed>"


@pytest.fixture(scope="module")
def update_start(ecu_factory: Callable[[], Machine]) -> StartingPoint:
    return StartingPoint(ecu_factory())


def test_the_installer_refuses_the_running_bank(ecu_factory: Callable[[], Machine],
                                                images: dict[str, bytes]) -> None:  # fmt: skip
    m = ecu_factory()
    a1 = images["A1"]
    with pytest.raises(FlashingError, match="BANK_A holds the image the ECU runs"):
        install(m, a1, "BANK_A")
    assert running(m) == ("A", "confirmed") and m.read_memory(BANK["A"], len(a1)) == a1
