"""Power loss during a UDS download: the bootloader, the light controller in bank A, an update to
bank B over CAN FD by udsoncan (harness.uds.flash), and the power cut before, during (torn) and
after flash operations of the download and the trial boot and confirm that follow, and right
after each state-changing request reaches the ECU (the hand-over to the bootloader, security
access, erase, request download, a transfer, transfer exit, the check, the reset).

After every cut and power-on the ECU boots an authentic image (its CMAC verified here), and a
second update run completes: the ECU ends on the new image, confirmed. `make sweep` cuts at
every flash operation (in parts over the cores); the suite at every state change and a
deterministic sample of the operations.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from udsoncan.exceptions import NegativeResponseException, TimeoutException

from harness.flashing import flash_controller
from harness.frames.can import CanFrame
from harness.peripherals.flash import AFTER, BEFORE, DURING, FlashController
from harness.uds import uds_client
from harness.uds.flash import FlashError, flash
from tests.uds_rig import BOOT_MS, Rig, make_rig, running, sign

FULL_SWEEP = os.environ.get("HARNESS_FULL_SWEEP") == "1"
PARTS = 16 if FULL_SWEEP else 4  # parts pytest-xdist spreads over the cores
NEW_VERSION = (1, 1, 0)
INTERRUPTED = (TimeoutException, NegativeResponseException, FlashError)
# (service ID, which occurrence) of the requests after which the power goes
STATE_CHANGES = [(0x10, 2), (0x27, 2), (0x31, 1), (0x34, 1), (0x36, 1), (0x36, 3), (0x37, 1),
                 (0x31, 2), (0x31, 3), (0x11, 1)]  # fmt: skip


@dataclass(frozen=True)
class Update:
    bank_a: Path  # the factory image, confirmed in bank A
    image: bytes  # the update, for bank B


@pytest.fixture(scope="module")
def update_images(firmware: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Update:
    bank_a = tmp_path_factory.mktemp("uds-cut") / "a.bin"
    bank_a.write_bytes(sign(firmware["elc_a"], "A", (1, 0, 0), 1))
    return Update(bank_a, sign(firmware["elc_b"], "B", NEW_VERSION, 2))


def update(rig: Rig, data: bytes) -> None:
    """What an update tool does: flash unless the ECU already runs the new version, then let
    the new image boot and check itself."""
    with uds_client(rig.network) as client:
        running_version = client.read_data_by_identifier([0xF189]).service_data.values[0xF189]
        if running_version != NEW_VERSION:
            flash(client, data)
    rig.network.run_for(ms=BOOT_MS)


def settle(rig: Rig) -> tuple[str, str]:
    """Power-cycle until the new image runs confirmed (at most 4 times)."""
    state = running(rig.ecu)
    for _ in range(4):
        if state == ("B", "confirmed"):
            break
        rig.ecu.power_off()
        rig.ecu.power_on()
        rig.network.run_for(ms=BOOT_MS)
        state = running(rig.ecu)
    return state


def survive(rig: Rig, data: bytes, arm: Callable[[], None]) -> None:
    """Arm a cut, update, and check what the cut left: an authentic image boots, a second
    update completes."""
    arm()
    with contextlib.suppress(*INTERRUPTED):
        update(rig, data)
    flash_controller(rig.ecu).cancel_cut()  # a cut the run never reached
    if not rig.ecu.powered:
        rig.ecu.power_on()
        rig.network.run_for(ms=BOOT_MS)
    running(rig.ecu)  # authentic, whatever the cut left
    update(rig, data)
    assert settle(rig) == ("B", "confirmed")


def test_power_loss_after_each_state_change(firmware: dict[str, Path],
                                            update_images: Update) -> None:  # fmt: skip
    data = update_images.image
    for sid, nth in STATE_CHANGES:
        rig = make_rig(firmware, update_images.bank_a)
        seen: list[int] = []

        def cut_after(frame: CanFrame, rig: Rig = rig, seen: list[int] = seen,
                      sid: int = sid, nth: int = nth) -> None:  # fmt: skip
            if frame.arbitration_id != 0x7E0 or frame.data[0] >> 4 not in (0, 1):
                return
            first = frame.data[1] if frame.data[0] >> 4 == 0 and frame.data[0] else frame.data[2]
            if frame.data[0] == 0x10 and frame.data[1] == 0:  # a first frame with the escape
                first = frame.data[6]
            if first == sid:
                seen.append(sid)
                if len(seen) == nth:  # 0.5 ms later: the ECU is handling it
                    rig.network.clock.schedule_at(rig.network.now_ns + 500_000,
                                                  rig.ecu.power_off)  # fmt: skip

        survive(rig, data, lambda rig=rig, hook=cut_after: rig.spy.listeners.append(hook))
        assert len(seen) >= nth, (sid, nth)  # the cut happened where it was meant to


@pytest.mark.parametrize("part", range(PARTS))
def test_power_loss_at_flash_operations_of_a_download(
    firmware: dict[str, Path], update_images: Update, part: int
) -> None:
    data = update_images.image
    probe = make_rig(firmware, update_images.bank_a)
    flc = flash_controller(probe.ecu)
    first = flc.operations
    update(probe, data)
    count = flc.operations - first  # the erase, the programs, the trial and confirm records
    assert settle(probe) == ("B", "confirmed") and count > 1000
    if FULL_SWEEP:
        sample = list(range(count))
    else:  # the erase's sectors, the first units, one near the start of each 4 KB block, the
        # CMAC trailer's units and the records of the trial boot and confirm (the last 8)
        sample = sorted({0, 1, 2, *range(0, count, 512), *range(count - 12, count)})
    for index in sample[part::PARTS]:
        for phase in (BEFORE, DURING, AFTER):
            rig = make_rig(firmware, update_images.bank_a)
            cut = flash_controller(rig.ecu)

            def arm(cut: FlashController = cut, start: int = cut.operations,
                    index: int = index, phase: str = phase) -> None:  # fmt: skip
                cut.cut_power(start + index, phase)

            survive(rig, data, arm)
