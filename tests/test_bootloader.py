"""The A/B bootloader (firmware_stubs/bootloader/) with the light controller as its application:
bank choice, CMAC verification through the security unit, trial boots confirmed by the
application or reverted after 3 attempts (watchdog resets), rollback protection, rejected
images with their reason, and the power-fail-safe boot records in NVM (torn records, power
cuts at every flash operation, page switches).

Everything is checked against Python-side references: images are signed and verified with
harness.image, records are parsed from the flash with zlib.crc32, the boot report is parsed
from SRAM with the layout of firmware_stubs/boot/boot.h."""

from __future__ import annotations

import contextlib
import inspect
import itertools
import random
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.cmac import CMAC

from harness import Machine, image
from harness.dbc import Dbc
from harness.loader import load_elf
from harness.network import Network, PythonNode
from harness.peripherals.flash import FlashController
from harness.peripherals.security import SecurityUnit
from harness.peripherals.sysctl import SysCtl
from harness.peripherals.watchdog import Watchdog

KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
OTHER_KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
BANK_A, BANK_B = 0x0001_0000, 0x0010_0000
BANKS = {0: BANK_A, 1: BANK_B}
BANK_SIZE = 960 * 1024
HEADER = 0x200
NVM_PAGES = (0x001F_0000, 0x001F_4000)
PAGE_SIZE = 0x4000
RECORD = 32
REPORT = 0x2000_0000
K = 3

# boot.h: the boot report and the verdicts
_REPORT = struct.Struct("<I4BII4B2I2III")
REPORT_MAGIC = 0x54505242
CONFIRMED, TRIAL = 1, 2
OK, EMPTY, BAD_MAGIC, BAD_HEADER, WRONG_LOAD, OVERSIZED, ECC, BUS_CMAC, BAD_CMAC = range(1, 10)
OLD_COUNTER, REJECTED, BAD_VECTORS, NO_KEY = 10, 11, 12, 13
REASONS = {BAD_MAGIC: "bad magic", BAD_HEADER: "bad header", WRONG_LOAD: "wrong load address",
           OVERSIZED: "oversized", ECC: "ECC error", BUS_CMAC: "bus error in CMAC",
           BAD_CMAC: "bad CMAC", OLD_COUNTER: "old security counter",
           REJECTED: "reverted before", BAD_VECTORS: "bad vector table"}  # fmt: skip
EVENT_REVERTED, EVENT_FACTORY = 0x01, 0x04
RST_POR, RST_WDG = 0x01, 0x04

# boot.h: the record
_RECORD = struct.Struct("<IIBBBBI8sII")
RECORD_MAGIC = 0x43524241
NO_BANK = 0xFF
NO_TAG = b"\xff" * 8

# Machine(faults="firmware") lets the bootloader take the BusFault of an uncorrectable ECC
# unit itself (its probe); without it a torn unit's raw bits are read.
FIRMWARE_FAULTS = "faults" in inspect.signature(Machine).parameters
needs_firmware_faults = pytest.mark.skipif(not FIRMWARE_FAULTS,
                                           reason="Machine(faults='firmware') not available")


# ---- Python-side references ----


@dataclass(frozen=True)
class Report:
    booted: int
    state: int
    attempts: int
    reset_causes: int
    stored_counter: int
    record_seq: int
    verdict: tuple[int, int]
    events: int
    reverted: int
    version: tuple[int, int]
    counter: tuple[int, int]
    ecc_faults: int


def report(m: Machine) -> Report:
    fields = _REPORT.unpack(m.read_memory(REPORT, _REPORT.size))
    magic, booted, state, attempts, causes, stored, seq, va, vb, events, reverted = fields[:11]
    assert magic == REPORT_MAGIC and fields[16] == ~REPORT_MAGIC & 0xFFFFFFFF, "no boot report"
    return Report(booted, state, attempts, causes, stored, seq, (va, vb), events, reverted,
                  (fields[11], fields[12]), (fields[13], fields[14]), fields[15])  # fmt: skip


@dataclass(frozen=True)
class Record:
    seq: int
    confirmed: int
    trial: int
    attempts: int
    counter: int
    tag: bytes
    address: int = 0


def record_bytes(r: Record) -> bytes:
    body = _RECORD.pack(RECORD_MAGIC, r.seq, r.confirmed, r.trial, r.attempts, 0, r.counter,
                        r.tag, 0, 0)[:28]  # fmt: skip
    return body + struct.pack("<I", zlib.crc32(body))


def records(m: Machine) -> list[Record]:
    """The valid records in NVM (magic and CRC right), in address order."""
    found = []
    for page in NVM_PAGES:
        data = m.read_memory(page, PAGE_SIZE)
        for off in range(0, PAGE_SIZE, RECORD):
            raw = data[off : off + RECORD]
            magic, seq, conf, trial, att, _, counter, tag, _, crc = _RECORD.unpack(raw)
            if magic == RECORD_MAGIC and zlib.crc32(raw[:28]) == crc:
                found.append(Record(seq, conf, trial, att, counter, tag, page + off))
    return found


def newest(m: Machine) -> Record | None:
    found = records(m)
    return max(found, key=lambda r: r.seq) if found else None


def same_state(a: Record | None, b: Record) -> bool:
    return a is not None and (a.confirmed, a.trial, a.attempts, a.counter, a.tag) == (
        b.confirmed, b.trial, b.attempts, b.counter, b.tag)  # fmt: skip


def lines(m: Machine) -> list[str]:
    return m.uart("USART1").text.splitlines()


def tag_of(signed: bytes) -> bytes:
    return image.parse(signed).mac[:8]


# ---- the rig ----


@pytest.fixture(scope="module")
def fw(firmware: dict[str, Path]) -> dict[str, Path]:
    return firmware


def signed(fw: dict[str, Path], target: str, version: tuple[int, int, int] = (1, 0, 0),
           counter: int = 1, key: bytes = KEY, selftest_fails: bool = False) -> bytes:  # fmt: skip
    """A signed image of `target` (elc_a or elc_b) for the bank it is linked for."""
    elf = fw[target]
    load = load_elf(elf).vector_table
    body = bytearray(image.body_of(elf, load))
    if selftest_fails:  # the controller's start-up checks fail: it never confirms itself
        sym = load_elf(elf).symbol("elc_selftest")
        body[sym.address - load : sym.address - load + 4] = b"FAIL"
    return image.sign(bytes(body), load_address=load, version=version,
                      security_counter=counter, key=key)  # fmt: skip


def ecu(fw: dict[str, Path], tmp_path: Path, a: bytes | None, b: bytes | None = None,
        nvm: Sequence[Record] = ()) -> Machine:  # fmt: skip
    """The bootloader with `a` and `b` in their banks, records written in NVM page 0 in
    order, the image key provisioned in the security unit's slot 0; not run yet."""
    images: list[tuple[str | Path, int]] = []
    for data, base in ((a, BANK_A), (b, BANK_B)):
        if data is not None:
            path = tmp_path / f"bank_{base:07x}.bin"
            path.write_bytes(data)
            images.append((path, base))
    kwargs: dict[str, Any] = {"faults": "firmware"} if FIRMWARE_FAULTS else {}
    m = Machine(fw["bootloader"], images=images, **kwargs)
    sec = m.peripheral("SEC")
    assert isinstance(sec, SecurityUnit)
    sec.provision_key(0, KEY)
    for i, rec in enumerate(nvm):
        m.write_memory(NVM_PAGES[0] + i * RECORD, record_bytes(rec))
    return m


def elc_value(m: Machine, fw: dict[str, Path], target: str, name: str) -> int:
    sym = load_elf(fw[target]).symbol(name)
    return int.from_bytes(m.read_memory(sym.address, sym.size or 4), "little")


def flc(m: Machine) -> FlashController:
    p = m.peripheral("FLC")
    assert isinstance(p, FlashController)
    return p


def watchdog(m: Machine) -> Watchdog:
    p = m.peripheral("WDG")
    assert isinstance(p, Watchdog)
    return p


def power_cycle(m: Machine) -> None:
    m.power_off()
    m.run_for(ms=1)
    m.power_on()


def boot(m: Machine, ms: float = 30) -> Report:
    m.run_for(ms=ms)
    return report(m)


A_CONFIRMED = Record(1, 0, NO_BANK, 0, 1, NO_TAG)


# ---- booting ----


def test_factory_state_boots_bank_a_and_the_light_controller_runs(
    fw: dict[str, Path], tmp_path: Path
) -> None:
    a = signed(fw, "elc_a")
    net = Network()
    net.can_bus("can0", bitrate=500_000, data_bitrate=2_000_000)
    m = net.add_ecu("elc", ecu(fw, tmp_path, a))
    tester = PythonNode("tester", net.bus("can0"))
    net.run_for(ms=300)
    assert lines(m) == ["boot: reset POR", "boot: bank A 1.0.0 confirmed, counter 0"]
    r = report(m)
    assert (r.booted, r.state, r.attempts) == (0, CONFIRMED, 0)
    assert r.verdict == (OK, EMPTY) and r.events == EVENT_FACTORY
    assert (r.reset_causes, r.stored_counter, r.record_seq) == (RST_POR, 0, 0)
    assert r.version == (0x0100_0000, 0) and r.counter == (1, 0) and r.ecc_faults == 0
    sysctl = m.peripheral("SYSCTL")
    assert isinstance(sysctl, SysCtl) and sysctl.causes == ()  # read and cleared
    # The light controller runs: its cyclic LightStatus on the bus, every 10 ms.
    dbc = Dbc.load()
    status = [d for d in map(dbc.decode, tester.received) if d and d.name == "LightStatus"]
    assert len(status) >= 25
    gaps = [b.timestamp_ns - a.timestamp_ns for a, b in itertools.pairwise(status)]
    assert all(abs(g - 10_000_000) < 500_000 for g in gaps)
    # After its start-up checks the factory image confirms itself: the first record.
    assert elc_value(m, fw, "elc_a", "boot_app_confirm_status") == 1
    assert records(m) == [Record(1, 0, NO_BANK, 0, 1, NO_TAG, NVM_PAGES[0])]
    # The watchdog the bootloader started runs, and the controller services it.
    net.run_for(ms=700)
    assert watchdog(m).running and watchdog(m).faults == []
    assert lines(m) == ["boot: reset POR", "boot: bank A 1.0.0 confirmed, counter 0"]


def test_the_light_controller_alone_neither_confirms_nor_services(fw: dict[str, Path]) -> None:
    m = Machine(fw["elc"])
    m.run_for(ms=300)
    assert m.read_symbol("boot_app_confirm_status") == 0
    assert not watchdog(m).running
    assert m.read_memory(NVM_PAGES[0], PAGE_SIZE) == b"\xff" * PAGE_SIZE


def test_a_newer_image_boots_in_trial_confirms_itself_and_stays(
    fw: dict[str, Path], tmp_path: Path
) -> None:
    a, b = signed(fw, "elc_a"), signed(fw, "elc_b", (1, 1, 0), counter=2)
    m = ecu(fw, tmp_path, a)
    m.run_for(ms=200)  # the factory image confirms itself
    assert same_state(newest(m), A_CONFIRMED)
    m.power_off()
    m.write_memory(BANK_B, b)  # as an updater would
    assert image.verify(m.read_memory(BANK_B, len(b)), KEY)
    m.power_on()
    r = boot(m)
    assert lines(m)[-2:] == ["boot: reset POR", "boot: bank B 1.1.0 trial 1/3"]
    assert (r.booted, r.state, r.attempts, r.stored_counter) == (1, TRIAL, 1, 1)
    assert r.verdict == (OK, OK) and r.record_seq == 2
    assert same_state(newest(m), Record(2, 0, 1, 1, 1, NO_TAG))
    m.run_for(ms=200)  # start-up checks, then the confirmation
    assert elc_value(m, fw, "elc_b", "boot_app_confirm_status") == 1
    assert [(x.seq, x.confirmed, x.trial, x.attempts, x.counter) for x in records(m)] == [
        (1, 0, NO_BANK, 0, 1), (2, 0, 1, 1, 1), (3, 1, NO_BANK, 0, 2)]  # counter raised
    power_cycle(m)
    r = boot(m)
    assert lines(m)[-2:] == ["boot: bank A 1.0.0 rejected: old security counter",
                             "boot: bank B 1.1.0 confirmed, counter 2"]  # no way back to A
    assert (r.booted, r.state, r.stored_counter, r.record_seq) == (1, CONFIRMED, 2, 3)
    assert r.verdict == (OLD_COUNTER, OK)
    m.run_for(ms=200)
    assert len(records(m)) == 3  # a confirmed image writes nothing
    # The next update goes to bank A, the same way.
    m.power_off()
    m.write_memory(BANK_A, signed(fw, "elc_a", (1, 2, 0), counter=3))
    m.power_on()
    assert boot(m, ms=200).state == TRIAL
    assert lines(m)[-1] == "boot: bank A 1.2.0 trial 1/3"
    assert same_state(newest(m), Record(5, 0, NO_BANK, 0, 3, NO_TAG))


def test_an_image_that_never_confirms_is_reverted_after_3_attempts(
    fw: dict[str, Path], tmp_path: Path
) -> None:
    a = signed(fw, "elc_a")
    b = signed(fw, "elc_b", (1, 1, 0), counter=2, selftest_fails=True)
    m = ecu(fw, tmp_path, a, b, nvm=[A_CONFIRMED])
    m.run_until(lambda: "reverted" in m.uart("USART1").text, timeout_ms=2000)
    m.run_for(ms=30)
    assert lines(m) == [
        "boot: reset POR", "boot: bank B 1.1.0 trial 1/3",
        "boot: reset WDG", "boot: bank B 1.1.0 trial 2/3",
        "boot: reset WDG", "boot: bank B 1.1.0 trial 3/3",
        "boot: reset WDG", "boot: bank B reverted after 3 attempts",
        "boot: bank A 1.0.0 confirmed, counter 1",
    ]  # fmt: skip
    assert [f.cause for f in watchdog(m).faults] == ["expired"] * K
    r = report(m)
    assert (r.booted, r.state, r.reset_causes, r.reverted) == (0, CONFIRMED, RST_WDG, 1)
    assert r.events == EVENT_REVERTED and r.verdict == (OK, REJECTED)
    assert r.stored_counter == 1  # never confirmed: the counter did not rise
    # Records: trial 1, 2, 3, then the revert naming the image (its CMAC's first 8 bytes).
    assert [(x.trial, x.attempts) for x in records(m)] == [
        (NO_BANK, 0), (1, 1), (1, 2), (1, 3), (NO_BANK, 0)]  # fmt: skip
    assert same_state(newest(m), Record(5, 0, NO_BANK, 0, 1, tag_of(b)))
    # Not tried again.
    power_cycle(m)
    boot(m)
    assert lines(m)[-3:] == ["boot: reset POR", "boot: bank B 1.1.0 rejected: reverted before",
                             "boot: bank A 1.0.0 confirmed, counter 1"]  # fmt: skip
    # A new image in bank B is a candidate again.
    m.power_off()
    m.write_memory(BANK_B, signed(fw, "elc_b", (1, 1, 1), counter=2))
    m.power_on()
    boot(m)
    assert lines(m)[-1] == "boot: bank B 1.1.1 trial 1/3"


def test_a_trial_image_that_no_longer_verifies_is_reverted_at_once(
    fw: dict[str, Path], tmp_path: Path
) -> None:
    a, b = signed(fw, "elc_a"), signed(fw, "elc_b", (1, 1, 0), counter=2)
    m = ecu(fw, tmp_path, a, b, nvm=[A_CONFIRMED, Record(2, 0, 1, 1, 1, NO_TAG)])
    m.write_memory(BANK_B + HEADER + 0x100, bytes([b[HEADER + 0x100] ^ 0x10]))
    r = boot(m)
    assert lines(m)[1:] == ["boot: bank B 1.1.0 rejected: bad CMAC",
                            "boot: bank B reverted: bad CMAC",
                            "boot: bank A 1.0.0 confirmed, counter 1"]  # fmt: skip
    assert (r.booted, r.state, r.reverted, r.verdict) == (0, CONFIRMED, 1, (OK, BAD_CMAC))
    # Damaged, not proven bad: not marked as rejected; its intact copy gets a new trial.
    assert same_state(newest(m), Record(3, 0, NO_BANK, 0, 1, NO_TAG))
    m.write_memory(BANK_B, b)
    power_cycle(m)
    assert boot(m).state == TRIAL
    assert lines(m)[-1] == "boot: bank B 1.1.0 trial 1/3"


def test_the_confirmed_bank_broken_makes_the_other_a_trial(
    fw: dict[str, Path], tmp_path: Path
) -> None:
    a, b = signed(fw, "elc_a", (1, 1, 0)), signed(fw, "elc_b", (1, 0, 0))  # B older
    m = ecu(fw, tmp_path, a, b, nvm=[A_CONFIRMED])
    r = boot(m)
    assert lines(m)[-1] == "boot: bank A 1.1.0 confirmed, counter 1"  # B is not newer
    m.write_memory(BANK_A + 0x40, b"\x00")  # the header's padding: the CMAC no longer matches
    power_cycle(m)
    r = boot(m)
    assert lines(m)[-2:] == ["boot: bank A 1.1.0 rejected: bad CMAC",
                             "boot: bank B 1.0.0 trial 1/3"]  # fmt: skip
    assert (r.booted, r.state, r.verdict) == (1, TRIAL, (BAD_CMAC, OK))


def test_no_valid_image_stays_in_the_bootloader(fw: dict[str, Path], tmp_path: Path) -> None:
    m = ecu(fw, tmp_path, signed(fw, "elc_a", key=OTHER_KEY))
    r = boot(m, ms=500)
    assert lines(m) == ["boot: reset POR", "boot: bank A 1.0.0 rejected: bad CMAC",
                        "boot: no valid image, waiting for UDS"]  # fmt: skip
    assert r.booted == NO_BANK and r.verdict == (BAD_CMAC, EMPTY)
    assert not watchdog(m).running and m.sleeping


def test_without_the_image_key_nothing_boots(fw: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(signed(fw, "elc_a"))
    m = Machine(fw["bootloader"], images=[(path, BANK_A)])  # key slot 0 never provisioned
    r = boot(m)
    assert lines(m)[1:] == ["boot: bank A 1.0.0 rejected: no key",
                            "boot: no valid image, waiting for UDS"]  # fmt: skip
    assert r.booted == NO_BANK and r.verdict == (NO_KEY, EMPTY)


# ---- rejections: the reason reported, the running bank untouched ----


def _oversized(fw: dict[str, Path]) -> bytes:
    """Bank B's image with a body size that does not fit the bank: the header forged, the
    CMAC recomputed over it and the body with the image key (only the size check refuses)."""
    forged = bytearray(signed(fw, "elc_b", (1, 1, 0), counter=2)[:-16])
    forged[0x10:0x14] = struct.pack("<I", BANK_SIZE - HEADER - 16 + 4)
    mac = CMAC(algorithms.AES(KEY))
    mac.update(bytes(forged))
    return bytes(forged) + mac.finalize()


def _tampered(fw: dict[str, Path], how: str) -> tuple[bytes, int]:
    """Bank B's contents and the verdict they must get."""
    b = bytearray(signed(fw, "elc_b", (1, 1, 0), counter=2))
    if how == "header bit":
        b[0x0C] ^= 0x04  # the security counter, 2 -> 6: only the CMAC tells
        return bytes(b), BAD_CMAC
    if how == "body bit":
        b[HEADER + len(b) // 2] ^= 0x80
        return bytes(b), BAD_CMAC
    if how == "trailer bit":
        b[-3] ^= 0x01
        return bytes(b), BAD_CMAC
    if how == "magic bit":
        b[1] ^= 0x01
        return bytes(b), BAD_MAGIC
    if how == "wrong key":
        return signed(fw, "elc_b", (1, 1, 0), counter=2, key=OTHER_KEY), BAD_CMAC
    if how == "wrong load address":
        return signed(fw, "elc_a", (1, 1, 0), counter=2), WRONG_LOAD  # linked for bank A
    if how == "oversized":
        return _oversized(fw), OVERSIZED
    if how == "old counter":
        return signed(fw, "elc_b", (1, 1, 0), counter=0), OLD_COUNTER
    if how == "bad vector table":
        body = bytearray(image.body_of(fw["elc_b"], BANK_B + HEADER))
        body[0:4] = struct.pack("<I", 0x1000_0000)  # the initial SP outside SRAM
        return image.sign(bytes(body), load_address=BANK_B + HEADER, version=(1, 1, 0),
                          security_counter=2, key=KEY), BAD_VECTORS  # fmt: skip
    assert how == "none"
    return bytes(b), OK


REJECTIONS = ["header bit", "body bit", "trailer bit", "magic bit", "wrong key",
              "wrong load address", "oversized", "old counter", "bad vector table"]  # fmt: skip


@pytest.mark.parametrize("how", [*REJECTIONS, "none"])
def test_a_bad_image_in_bank_b_is_rejected_with_its_reason(
    fw: dict[str, Path], tmp_path: Path, how: str
) -> None:
    b, verdict = _tampered(fw, how)
    try:
        reference_ok = image.verify(b, KEY)
    except image.ImageError:
        reference_ok = False
    assert reference_ok == (how in ("none", "old counter", "wrong load address",
                                    "bad vector table"))  # fmt: skip
    a = signed(fw, "elc_a")
    m = ecu(fw, tmp_path, a, b, nvm=[A_CONFIRMED])
    before = m.read_memory(BANK_A, BANK_SIZE), m.read_memory(NVM_PAGES[0], 2 * PAGE_SIZE)
    r = boot(m, ms=150)
    if verdict == OK:  # the untampered image: a trial
        assert (r.booted, r.state, r.verdict) == (1, TRIAL, (OK, OK))
        return
    version = "" if verdict == BAD_MAGIC else " 1.1.0"  # a header it cannot read
    assert lines(m) == ["boot: reset POR",
                        f"boot: bank B{version} rejected: {REASONS[verdict]}",
                        "boot: bank A 1.0.0 confirmed, counter 1"]  # fmt: skip
    assert (r.booted, r.state, r.verdict) == (0, CONFIRMED, (OK, verdict))
    # Bank A and the boot state untouched; the light controller in A runs.
    assert (m.read_memory(BANK_A, BANK_SIZE), m.read_memory(NVM_PAGES[0], 2 * PAGE_SIZE)) == before
    assert elc_value(m, fw, "elc_a", "ms_ticks") > 100


def test_any_flipped_bit_of_an_image_is_caught(fw: dict[str, Path], tmp_path: Path) -> None:
    """One bit flipped anywhere in bank B's image (header, body or trailer): never booted."""
    a, b = signed(fw, "elc_a"), signed(fw, "elc_b", (1, 1, 0), counter=2)
    m = ecu(fw, tmp_path, a, b, nvm=[A_CONFIRMED])
    fresh = m.snapshot()
    rng = random.Random(11)
    spots = [rng.randrange(0, 0x1C) for _ in range(8)] + [
        rng.randrange(0x1C, HEADER) for _ in range(4)] + [
        rng.randrange(HEADER, len(b) - 16) for _ in range(12)] + [
        rng.randrange(len(b) - 16, len(b)) for _ in range(4)]  # fmt: skip
    for offset in spots:
        bit = rng.randrange(8)
        m.restore(fresh)
        m.write_memory(BANK_B + offset, bytes([b[offset] ^ 1 << bit]))
        tampered = m.read_memory(BANK_B, len(b))
        with contextlib.suppress(image.ImageError):  # else not even an image to Python
            assert not image.verify(tampered, KEY)
        r = boot(m, ms=20)
        assert r.booted == 0 and r.state == CONFIRMED, (offset, bit)
        assert r.verdict[0] == OK and r.verdict[1] not in (OK, EMPTY), (offset, bit)
        if offset >= 0x1C:
            assert r.verdict[1] == BAD_CMAC, (offset, bit)
        assert same_state(newest(m), A_CONFIRMED) and len(records(m)) == 1


def test_an_uncorrectable_unit_in_an_image_body_is_a_bus_error_in_the_cmac(
    fw: dict[str, Path], tmp_path: Path
) -> None:
    a, b = signed(fw, "elc_a"), signed(fw, "elc_b", (1, 1, 0), counter=2)
    m = ecu(fw, tmp_path, a, b, nvm=[A_CONFIRMED])
    unit = BANK_B + HEADER + 0x1000
    flc(m).flip_bit(unit, 0)
    flc(m).flip_bit(unit + 5, 3)
    assert flc(m).unit_status(unit) == "double"
    r = boot(m)
    assert lines(m)[1] == "boot: bank B 1.1.0 rejected: bus error in CMAC"
    assert (r.booted, r.verdict) == (0, (OK, BUS_CMAC))


def test_a_single_bit_error_is_corrected_and_the_image_still_boots(
    fw: dict[str, Path], tmp_path: Path
) -> None:
    a = signed(fw, "elc_a")
    m = ecu(fw, tmp_path, a, nvm=[A_CONFIRMED])
    flc(m).flip_bit(BANK_A + HEADER + 0x800, 6)  # the ECC corrects it: not a tampered image
    flc(m).flip_bit(BANK_A + 8, 1)  # in the header's version field
    r = boot(m)
    assert (r.booted, r.state, r.verdict[0]) == (0, CONFIRMED, OK)


@needs_firmware_faults
def test_an_uncorrectable_header_unit_is_an_ecc_error(fw: dict[str, Path], tmp_path: Path) -> None:
    a, b = signed(fw, "elc_a"), signed(fw, "elc_b", (1, 1, 0), counter=2)
    m = ecu(fw, tmp_path, a, b, nvm=[A_CONFIRMED])
    flc(m).flip_bit(BANK_B + 0x08, 0)
    flc(m).flip_bit(BANK_B + 0x0A, 7)  # two bits of the unit holding version and counter
    r = boot(m)
    assert lines(m)[1] == "boot: bank B rejected: ECC error"
    assert (r.booted, r.verdict) == (0, (OK, ECC))
    assert r.ecc_faults == 1  # the BusFault, taken by the probe's handler


# ---- the boot records: torn writes, power cuts, page switches ----


def test_a_torn_record_is_skipped_and_the_previous_one_stands(
    fw: dict[str, Path], tmp_path: Path
) -> None:
    a, b = signed(fw, "elc_a"), signed(fw, "elc_b", (1, 1, 0), counter=2)
    m = ecu(fw, tmp_path, a, b, nvm=[A_CONFIRMED])
    # A record making the counter 9 (bank A's image would then be too old), torn after two
    # of its four units: no CRC.
    torn = record_bytes(Record(2, 0, NO_BANK, 0, 9, NO_TAG))[:16]
    m.write_memory(NVM_PAGES[0] + RECORD, torn)
    r = boot(m)
    assert (r.stored_counter, r.record_seq) == (1, 2)  # seq 1 stood; the trial is record 2
    assert (r.booted, r.state) == (1, TRIAL)
    # The new record went after the torn slot, which stays as it was.
    assert m.read_memory(NVM_PAGES[0] + RECORD, 16) == torn
    assert m.read_memory(NVM_PAGES[0] + RECORD + 16, 16) == b"\xff" * 16
    assert [x.address - NVM_PAGES[0] for x in records(m)] == [0, 2 * RECORD]
    assert same_state(newest(m), Record(2, 0, 1, 1, 1, NO_TAG))


def test_an_uncorrectable_record_unit_is_skipped(fw: dict[str, Path], tmp_path: Path) -> None:
    a = signed(fw, "elc_a")
    m = ecu(fw, tmp_path, a, nvm=[A_CONFIRMED, Record(2, 0, NO_BANK, 0, 9, NO_TAG)])
    unit = NVM_PAGES[0] + RECORD + 8  # record 2's unit holding its counter
    flc(m).flip_bit(unit + 4, 0)
    flc(m).flip_bit(unit + 4, 1)  # counter 9 -> 10 in the raw bits, and uncorrectable
    assert flc(m).unit_status(unit) == "double"
    r = boot(m)
    assert lines(m)[-1] == "boot: bank A 1.0.0 confirmed, counter 1"
    assert (r.booted, r.state, r.stored_counter, r.record_seq) == (0, CONFIRMED, 1, 1)
    # The record's read was a BusFault the probe took (else its raw bits fail the CRC).
    assert r.ecc_faults == (1 if FIRMWARE_FAULTS else 0)


def test_a_torn_record_with_a_hidden_ecc_bit_is_not_programmed_over(
    fw: dict[str, Path], tmp_path: Path
) -> None:
    """A slot that reads erased but whose ECC byte lost a bit (corrected on read, refused by
    the flash controller when programmed): the record goes to the next slot."""
    a, b = signed(fw, "elc_a"), signed(fw, "elc_b", (1, 1, 0), counter=2)
    m = ecu(fw, tmp_path, a, b, nvm=[A_CONFIRMED])
    flc(m).flip_ecc_bit(NVM_PAGES[0] + RECORD, 2)
    assert m.read_memory(NVM_PAGES[0] + RECORD, RECORD) == b"\xff" * RECORD
    r = boot(m)
    assert (r.booted, r.state, r.record_seq) == (1, TRIAL, 2)
    assert [x.address - NVM_PAGES[0] for x in records(m)] == [0, 2 * RECORD]


def _run_with_cut(m: Machine, at: int, phase: str) -> bool:
    """Run the boot with a power cut at flash operation `at`; whether it fired."""
    flc(m).cut_power(at, phase)
    m.run_for(ms=300)
    cut = bool(flc(m).cuts)
    if cut:
        assert not m.powered
        m.power_on()
        m.run_for(ms=300)
    return cut


@pytest.mark.parametrize("phase", ["before", "during", "after"])
def test_a_power_cut_at_any_record_write_of_the_trial_never_bricks(
    fw: dict[str, Path], tmp_path: Path, phase: str
) -> None:
    """The bootloader's trial record (4 program operations) and the application's confirmed
    record (4 more), cut before, during or after each: the ECU always boots a valid image,
    and the records say which."""
    a, b = signed(fw, "elc_a"), signed(fw, "elc_b", (1, 1, 0), counter=2)
    m = ecu(fw, tmp_path, a, b, nvm=[A_CONFIRMED])
    fresh = m.snapshot()
    for at in range(8):
        m.restore(fresh)
        assert _run_with_cut(m, at, phase)
        r = report(m)
        final = newest(m)
        assert final is not None and r.booted in (0, 1), at
        # Wherever it was cut, the update went through in the end: trial, then confirmed.
        assert (final.confirmed, final.trial, final.counter) == (1, NO_BANK, 2), (at, final)
        assert r.booted == 1
        assert all(x.seq != y.seq for x, y in itertools.combinations(records(m), 2))


def test_a_full_page_switches_to_the_other_page_erased(fw: dict[str, Path], tmp_path: Path) -> None:
    a, b = signed(fw, "elc_a"), signed(fw, "elc_b", (1, 1, 0), counter=2)
    m = ecu(fw, tmp_path, a, b)
    slots = PAGE_SIZE // RECORD
    page0 = b"".join(record_bytes(Record(n + 1, 0, NO_BANK, 0, 1, NO_TAG)) for n in range(slots))
    m.write_memory(NVM_PAGES[0], page0)
    m.write_memory(NVM_PAGES[1], record_bytes(Record(7, 1, NO_BANK, 0, 1, NO_TAG)) + b"junk")
    fresh = m.snapshot()
    r = boot(m, ms=60)
    assert (r.booted, r.state, r.record_seq) == (1, TRIAL, slots + 1)
    assert m.read_memory(NVM_PAGES[0], PAGE_SIZE) == page0  # the newest records' page kept
    assert m.read_memory(NVM_PAGES[1], RECORD) == record_bytes(Record(slots + 1, 0, 1, 1, 1,
                                                                      NO_TAG))  # fmt: skip
    assert m.read_memory(NVM_PAGES[1] + RECORD, PAGE_SIZE - RECORD) == b"\xff" * (
        PAGE_SIZE - RECORD)
    # A cut in the middle of that erase: the next boot erases again and goes on.
    m.restore(fresh)
    assert _run_with_cut(m, 0, "during")
    assert flc(m).cuts[0][1] == "during"
    assert report(m).booted == 1
    # Page 1 erased again: the trial record at its start, then the application's confirmation.
    assert [(x.seq, x.trial, x.address - NVM_PAGES[1]) for x in records(m)
            if x.address >= NVM_PAGES[1]] == [(slots + 1, 1, 0), (slots + 2, NO_BANK, RECORD)]
