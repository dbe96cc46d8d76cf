"""Power and resets: power off and on (SRAM lost to a seeded pattern, flash kept), warm resets
(software, pin) that keep SRAM, the reset causes the firmware reads in SYSCTL.RSTCAUSE, and
flash contents saved to a file and loaded into another machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import Machine
from harness.core.nvic import scs_block
from harness.errors import FirmwareLoadError
from harness.peripherals.sysctl import SYSCTL_BLOCK, SysCtl

SRAM = 0x2000_0000
AIRCR = scs_block(64).register("AIRCR").offset
SYSRESETREQ = 0x05FA_0004  # VECTKEY and SYSRESETREQ
RSTCAUSE = SYSCTL_BLOCK.register("RSTCAUSE").offset


def sysctl(m: Machine) -> SysCtl:
    p = m.peripheral("SYSCTL")
    assert isinstance(p, SysCtl)
    return p


def edges(m: Machine, pin: int, since_cycle: int = 0) -> int:
    return sum(1 for e in m.gpio("GPIOA").events if e.pin == pin and e.cycle >= since_cycle)


def test_a_new_machine_says_power_on_and_warm_resets_add_their_causes(firmware) -> None:
    m = Machine(firmware["app"])
    assert sysctl(m).causes == ("power-on",)
    m.run_for(ms=1)
    m.peripheral("SCS").write(AIRCR, 4, SYSRESETREQ)  # as the firmware would
    m.run_for(ms=1)
    assert sysctl(m).causes == ("power-on", "software")  # they accumulate
    sysctl(m).write(RSTCAUSE, 4, 0b11)  # the firmware clears them (write 1 to clear)
    assert sysctl(m).causes == ()
    m.reset_pin()
    assert sysctl(m).causes == ("pin",)
    assert sysctl(m).read(RSTCAUSE, 4) == 0b1000


def test_a_warm_reset_keeps_sram_and_a_power_cycle_replaces_it(firmware) -> None:
    m = Machine(firmware["app"], seed=7)
    m.run_for(ms=2)
    m.write_memory(SRAM + 0x3F000, b"kept over resets")
    m.reset_pin()
    assert m.read_memory(SRAM + 0x3F000, 16) == b"kept over resets"
    flash = m.read_memory(0, 64)
    m.power_off()
    m.power_on()
    assert m.read_memory(SRAM + 0x3F000, 16) != b"kept over resets"
    assert m.read_memory(0, 64) == flash  # flash keeps its contents
    assert sysctl(m).causes == ("power-on",)  # a power-on clears the other causes
    # the pattern comes from the seed and the power cycle: repeatable, and not all zeros
    twin = Machine(firmware["app"], seed=7)
    twin.power_off()
    twin.power_on()
    other = Machine(firmware["app"], seed=8)
    other.power_off()
    other.power_on()
    pattern = m.read_memory(SRAM + 0x3F000, 256)
    assert pattern == twin.read_memory(SRAM + 0x3F000, 256) != bytes(256)
    assert pattern != other.read_memory(SRAM + 0x3F000, 256)


def test_nothing_runs_while_the_power_is_off_and_the_firmware_boots_again(firmware) -> None:
    m = Machine(firmware["app"])
    m.run_for(ms=5)
    assert edges(m, 1) > 0  # the 10 kHz control output toggles
    m.power_off()
    off_at = m.cycles
    m.run_for(ms=20)
    assert edges(m, 1, off_at) == 0 and m.now_ms == pytest.approx(25)
    assert not m.awake and m.next_event_ns() is None  # a network would skip over it
    m.power_on()
    on_at = m.cycles
    m.run_for(ms=5)
    assert edges(m, 1, on_at) > 0  # booted again from its reset vector


def test_a_snapshot_keeps_the_power_state(firmware) -> None:
    m = Machine(firmware["app"])
    m.run_for(ms=1)
    m.power_off()
    snap = m.snapshot()
    m.power_on()
    m.run_for(ms=2)
    m.restore(snap)
    assert not m.powered and m.power_cycles == 0
    m.run_for(ms=2)
    assert edges(m, 1, m.cycles - m.clock.cycles_for(ms=2)) == 0


def test_flash_saved_to_a_file_boots_in_another_machine(firmware, tmp_path: Path) -> None:
    m = Machine(firmware["app"])
    path = tmp_path / "ecu.flash"
    m.save_flash(path)
    assert path.stat().st_size == 2 * 1024 * 1024
    other = Machine(firmware["semihost"])
    other.load_flash(path)
    assert other.read_memory(0, 4096) == m.read_memory(0, 4096)
    other.power_off()
    other.power_on()
    other.run_for(ms=5)
    assert edges(other, 1) > 0  # it runs the application it was given
    (tmp_path / "short.flash").write_bytes(b"\xff" * 100)
    wrong = r"short\.flash: 100 bytes, but board ASILB-M4's flash holds 2097152: not its flash"
    with pytest.raises(FirmwareLoadError, match=wrong):
        other.load_flash(tmp_path / "short.flash")


def test_a_watchdog_left_unserviced_resets_the_machine_and_says_so(firmware) -> None:
    from harness.peripherals.watchdog import KEY_START, KEY_UNLOCK, WATCHDOG_BLOCK, Watchdog

    m = Machine(firmware["app"])
    wdg = m.peripheral("WDG")
    assert isinstance(wdg, Watchdog)
    key, cfg, prescaler = (WATCHDOG_BLOCK.register(n).offset for n in ("KEY", "CFG", "PRESCALER"))
    m.run_for(ms=1)
    m.write_memory(SRAM + 0x3F000, b"survives")
    wdg.write(key, 4, KEY_UNLOCK)
    wdg.write(prescaler, 4, 0)  # 32 kHz ticks
    wdg.write(cfg, 4, 32)  # 1 ms
    wdg.write(key, 4, KEY_START)
    sysctl(m).write(RSTCAUSE, 4, 0x1F)
    started = m.cycles
    m.run_for(ms=2)
    assert sysctl(m).causes == ("watchdog",)
    assert wdg.last_cause == "expired" and not wdg.running  # a reset stops it
    assert wdg.faults[0].cycle == started + m.clock.hz // 1000  # 32 ticks of 1/32000 s
    assert m.read_memory(SRAM + 0x3F000, 8) == b"survives"  # a warm reset keeps SRAM


def test_the_flash_controller_programs_and_a_power_cut_tears_a_unit(firmware) -> None:
    from harness.peripherals.flash import FLASH_BLOCK, KEY1, KEY2, OP_PROGRAM, FlashController

    m = Machine(firmware["app"])
    flc = m.peripheral("FLC")
    assert isinstance(flc, FlashController)
    reg = {n: FLASH_BLOCK.register(n).offset for n in ("KEY", "CR", "ADDR", "DATA0", "DATA1", "SR")}
    assert flc.check_fetch(0x0001_0000, 4096) is None  # the loaded image is stored with its ECC
    assert m.read_memory(0x0010_0000, 8) == b"\xff" * 8  # bank B erased

    flc.write(reg["KEY"], 4, KEY1)  # unlock (a key while unlocked would lock it)
    flc.write(reg["KEY"], 4, KEY2)

    def program(address: int, data: bytes) -> None:
        flc.write(reg["ADDR"], 4, address)
        flc.write(reg["DATA0"], 4, int.from_bytes(data[:4], "little"))
        flc.write(reg["DATA1"], 4, int.from_bytes(data[4:], "little"))
        flc.write(reg["CR"], 4, OP_PROGRAM | 1 << 16)

    program(0x0010_0000, b"ABCDEFGH")
    m.run_for(ms=1)
    assert m.read_memory(0x0010_0000, 8) == b"ABCDEFGH"
    flc.cut_power(flc.operations, "during")
    program(0x0010_0008, b"\x00" * 8)
    m.run_for(ms=1)
    assert not m.powered  # the cut came halfway through the program
    m.power_on()
    assert flc.check_fetch(0x0010_0008, 8) == "double"  # torn: its ECC no longer matches
    assert m.read_memory(0x0010_0000, 8) == b"ABCDEFGH"  # the unit before is intact
    m.run_for(ms=5)
    assert edges(m, 1) > 0  # the application still boots
