"""The security unit (SEC), driven through its registers: AES-ECB/CBC and AES-CMAC against
the NIST vectors, key slots that cannot be read back, the provisioning lock, errors, timing
in virtual time, the IRQ, the RNG and snapshots."""

from __future__ import annotations

import pytest

from harness.clock import VirtualClock
from harness.peripherals.security import (
    LOCK_KEY,
    OP_CBC_DECRYPT,
    OP_CBC_ENCRYPT,
    OP_CMAC,
    OP_ECB_DECRYPT,
    OP_ECB_ENCRYPT,
    SECURITY_BLOCK,
    KeysLocked,
    SecurityUnit,
)

RAM_BASE = 0x2000_0000
RAM_SIZE = 0x400
SRC, DST = RAM_BASE + 0x100, RAM_BASE + 0x200

STATUS = SECURITY_BLOCK.register("STATUS")
BUSY, DONE, LOCKED = (STATUS.field(n).mask for n in ("BUSY", "DONE", "LOCKED"))
ERR_KEY_READ, ERR_SLOT_EMPTY, ERR_RANGE, ERR_LOCKED, ERR_BUSY, ERR_PARAM = (
    STATUS.field(f"ERR_{n}").mask
    for n in ("KEY_READ", "SLOT_EMPTY", "RANGE", "LOCKED", "BUSY", "PARAM")
)
CTRL = SECURITY_BLOCK.register("CTRL")
IE = SECURITY_BLOCK.register("IE")

# NIST SP 800-38A, appendix F: the AES-128 key and the four plaintext blocks of F.1 and F.2.
KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
PLAINTEXT = bytes.fromhex(
    "6bc1bee22e409f96e93d7e117393172a"
    "ae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52ef"
    "f69f2445df4f9b17ad2b417be66c3710"
)
ECB_CIPHERTEXT = bytes.fromhex(  # F.1.1 ECB-AES128.Encrypt (and F.1.2's input)
    "3ad77bb40d7a3660a89ecaf32466ef97"
    "f5d3d58503b9699de785895a96fdbaaf"
    "43b1cd7f598ece23881b00e3ed030688"
    "7b0c785e27e8ad3f8223207104725dd4"
)
CBC_IV = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
CBC_CIPHERTEXT = bytes.fromhex(  # F.2.1 CBC-AES128.Encrypt (and F.2.2's input)
    "7649abac8119b246cee98e9b12e9197d"
    "5086cb9b507219ee95db113a917678b2"
    "73bed6b8e3c1743b7116e69e22229516"
    "3ff1caa1681fac09120eca307586e1a7"
)
# NIST SP 800-38B, appendix D.1 (AES-128): message length in bits -> tag. The messages are
# the first Mlen bits of PLAINTEXT, with the same key.
CMAC_TAGS = {
    0: bytes.fromhex("bb1d6929e95937287fa37d129b756746"),
    128: bytes.fromhex("070a16b46b4d4144f79bdd9dd04a287c"),
    320: bytes.fromhex("dfa66747de9ae63030ca32611497c827"),
    512: bytes.fromhex("51f0bebf7e3b9d92fc49741779363cfe"),
}


class FakeIrq:
    def __init__(self) -> None:
        self.level = False
        self.changes: list[tuple[int, bool]] = []
        self.clock: VirtualClock | None = None

    def set(self, level: bool) -> None:
        if level != self.level and self.clock is not None:
            self.changes.append((self.clock.cycles, level))
        self.level = level


class Ram:
    """Memory for the unit's bus accesses: a range outside it raises ValueError."""

    def __init__(self) -> None:
        self.data = bytearray(RAM_SIZE)

    def _offset(self, address: int, length: int) -> int:
        offset = address - RAM_BASE
        if offset < 0 or offset + length > RAM_SIZE:
            raise ValueError(f"0x{address:08X}+{length} is outside RAM")
        return offset

    def read(self, address: int, length: int) -> bytes:
        offset = self._offset(address, length)
        return bytes(self.data[offset : offset + length])

    def write(self, address: int, data: bytes) -> None:
        offset = self._offset(address, len(data))
        self.data[offset : offset + len(data)] = data

    def put(self, address: int, data: bytes) -> None:
        self.write(address, data)


class Bench:
    def __init__(self, seed: int = 0, cycles_per_block: int = 100) -> None:
        self.clock = VirtualClock(100_000_000)
        self.irq = FakeIrq()
        self.irq.clock = self.clock
        self.ram = Ram()
        self.sec = SecurityUnit("SEC", 0x4002_0000, self.clock, self.irq, self.ram.read,
                                self.ram.write, seed=seed,
                                cycles_per_block=cycles_per_block)  # fmt: skip


@pytest.fixture
def bench() -> Bench:
    return Bench()


def write(sec: SecurityUnit, reg: str, value: int, index: int = 0, size: int = 4) -> None:
    sec.write(SECURITY_BLOCK.register(reg).offset + 4 * index, size, value)


def read(sec: SecurityUnit, reg: str, index: int = 0) -> int:
    return sec.read(SECURITY_BLOCK.register(reg).offset + 4 * index, 4)


def words(data: bytes) -> list[int]:
    return [int.from_bytes(data[i : i + 4], "big") for i in range(0, len(data), 4)]


def load_key(sec: SecurityUnit, slot: int, key: bytes) -> None:
    """What provisioning firmware does: select the slot, write the four key words."""
    write(sec, "KEYSEL", slot)
    for i, w in enumerate(words(key)):
        write(sec, "KEYDATA", w, i)


def start(sec: SecurityUnit, op: int, slot: int, src: int, length: int, dst: int = DST,
          iv: bytes | None = None) -> None:  # fmt: skip
    write(sec, "SRC", src)
    write(sec, "DST", dst)
    write(sec, "LEN", length)
    if iv is not None:
        for i, w in enumerate(words(iv)):
            write(sec, "IV", w, i)
    write(sec, "CTRL", CTRL.pack(START=1, OP=op, KEYSLOT=slot))


def finish(b: Bench) -> None:
    """Run virtual time until the operation ends."""
    when = b.clock.next_deadline()
    assert when is not None
    b.clock.advance_to(when)
    assert read(b.sec, "STATUS") & (BUSY | DONE) == DONE


def mac(sec: SecurityUnit) -> bytes:
    return b"".join(read(sec, "MAC", i).to_bytes(4, "big") for i in range(4))


def iv(sec: SecurityUnit) -> bytes:
    return b"".join(read(sec, "IV", i).to_bytes(4, "big") for i in range(4))


# ---- the NIST vectors ----


@pytest.mark.parametrize(("op", "data", "expected"), [
    (OP_ECB_ENCRYPT, PLAINTEXT, ECB_CIPHERTEXT),  # F.1.1
    (OP_ECB_DECRYPT, ECB_CIPHERTEXT, PLAINTEXT),  # F.1.2
], ids=["F.1.1-encrypt", "F.1.2-decrypt"])  # fmt: skip
def test_aes_ecb(bench: Bench, op: int, data: bytes, expected: bytes) -> None:
    load_key(bench.sec, 3, KEY)
    bench.ram.put(SRC, data)
    start(bench.sec, op, 3, SRC, len(data))
    finish(bench)
    assert bench.ram.read(DST, len(expected)) == expected
    assert read(bench.sec, "STATUS") == DONE  # and no error


@pytest.mark.parametrize(("op", "data", "expected"), [
    (OP_CBC_ENCRYPT, PLAINTEXT, CBC_CIPHERTEXT),  # F.2.1
    (OP_CBC_DECRYPT, CBC_CIPHERTEXT, PLAINTEXT),  # F.2.2
], ids=["F.2.1-encrypt", "F.2.2-decrypt"])  # fmt: skip
def test_aes_cbc(bench: Bench, op: int, data: bytes, expected: bytes) -> None:
    bench.sec.provision_key(0, KEY)
    bench.ram.put(SRC, data)
    start(bench.sec, op, 0, SRC, len(data), iv=CBC_IV)
    finish(bench)
    assert bench.ram.read(DST, len(expected)) == expected
    assert iv(bench.sec) == CBC_CIPHERTEXT[-16:]  # the next chaining value


@pytest.mark.parametrize("op", [OP_CBC_ENCRYPT, OP_CBC_DECRYPT])
def test_cbc_continues_from_the_iv_it_leaves(bench: Bench, op: int) -> None:
    """A message processed in two operations, the second with the IV the first left."""
    data, expected = (PLAINTEXT, CBC_CIPHERTEXT) if op == OP_CBC_ENCRYPT else (
        CBC_CIPHERTEXT, PLAINTEXT)  # fmt: skip
    bench.sec.provision_key(1, KEY)
    bench.ram.put(SRC, data)
    start(bench.sec, op, 1, SRC, 16, iv=CBC_IV)
    finish(bench)
    assert iv(bench.sec) == CBC_CIPHERTEXT[:16]
    start(bench.sec, op, 1, SRC + 16, 48, dst=DST + 16)
    finish(bench)
    assert bench.ram.read(DST, 64) == expected


@pytest.mark.parametrize("mlen", sorted(CMAC_TAGS))
def test_aes_cmac(bench: Bench, mlen: int) -> None:
    load_key(bench.sec, 7, KEY)
    bench.ram.put(SRC, PLAINTEXT)
    before = bytes(bench.ram.data)
    start(bench.sec, OP_CMAC, 7, SRC, mlen // 8)
    finish(bench)
    assert mac(bench.sec) == CMAC_TAGS[mlen]
    assert [read(bench.sec, "MAC", i) for i in range(4)] == words(CMAC_TAGS[mlen])  # big-endian
    assert bytes(bench.ram.data) == before  # CMAC writes no memory
    assert read(bench.sec, "STATUS") == DONE


def test_registers_at_reset(bench: Bench) -> None:
    offsets = {r.name: r.offset for r in SECURITY_BLOCK.registers}
    assert offsets == {"CTRL": 0x00, "STATUS": 0x04, "IE": 0x08, "SRC": 0x10, "DST": 0x14,
                       "LEN": 0x18, "IV": 0x20, "MAC": 0x30, "KEYSEL": 0x40, "KEYSTAT": 0x44,
                       "KEYDATA": 0x50, "RNG": 0x60, "LOCK": 0x70}  # fmt: skip
    for name in ("CTRL", "STATUS", "IE", "SRC", "DST", "LEN", "KEYSEL", "KEYSTAT", "LOCK"):
        assert read(bench.sec, name) == 0, name
    assert [read(bench.sec, "MAC", i) for i in range(4)] == [0] * 4
    assert not bench.irq.level


# ---- keys ----


def test_keys_cannot_be_read(bench: Bench) -> None:
    sec = bench.sec
    load_key(sec, 2, KEY)
    assert sec.slot_loaded(2) and read(sec, "KEYSTAT") == 1 << 2
    for i in range(4):
        assert read(sec, "KEYDATA", i) == 0
    assert sec.read(SECURITY_BLOCK.register("KEYDATA").offset + 1, 1) == 0  # a byte too
    assert read(sec, "STATUS") == ERR_KEY_READ
    write(sec, "STATUS", ERR_KEY_READ)  # write 1 to clear
    assert read(sec, "STATUS") == 0
    # The key words are kept neither in the register file nor, after the fourth, in the
    # window (the slot keeps the key as bytes).
    state = repr(sec.snapshot())
    for w in words(KEY):
        assert str(w) not in state


def test_key_words_in_any_order_the_fourth_stores(bench: Bench) -> None:
    sec = bench.sec
    write(sec, "KEYSEL", 5)
    for i in (3, 1, 0):
        write(sec, "KEYDATA", words(KEY)[i], i)
    assert not sec.slot_loaded(5)
    write(sec, "KEYDATA", 0x1234, 2, size=2)  # partial key words are ignored
    assert not sec.slot_loaded(5)
    write(sec, "KEYSEL", 4)  # a new slot empties the window
    write(sec, "KEYDATA", words(KEY)[2], 2)
    assert not sec.slot_loaded(4) and not sec.slot_loaded(5)
    load_key(sec, 4, KEY)
    assert [sec.slot_loaded(n) for n in range(8)] == [n == 4 for n in range(8)]
    bench.ram.put(SRC, PLAINTEXT[:16])
    start(sec, OP_ECB_ENCRYPT, 4, SRC, 16)
    finish(bench)
    assert bench.ram.read(DST, 16) == ECB_CIPHERTEXT[:16]


def test_empty_slot_is_an_error(bench: Bench) -> None:
    sec = bench.sec
    sec.provision_key(0, KEY)
    bench.ram.put(SRC, PLAINTEXT)
    start(sec, OP_ECB_ENCRYPT, 1, SRC, 64)
    assert read(sec, "STATUS") == ERR_SLOT_EMPTY  # refused at once: not BUSY, no DONE
    assert bench.clock.next_deadline() is None
    assert bench.ram.read(DST, 64) == bytes(64)


def test_python_api_checks_its_arguments(bench: Bench) -> None:
    sec = bench.sec
    with pytest.raises(ValueError, match="16 bytes"):
        sec.provision_key(0, KEY[:15])
    with pytest.raises(ValueError, match="out of range"):
        sec.provision_key(8, KEY)
    with pytest.raises(ValueError, match="out of range"):
        sec.slot_loaded(-1)
    assert not any(sec.slot_loaded(n) for n in range(8))


# ---- the provisioning lock ----


def test_lock_through_the_register(bench: Bench) -> None:
    sec = bench.sec
    load_key(sec, 0, KEY)
    write(sec, "LOCK", 0x12345678)  # not the lock value: ignored
    assert not sec.locked and not read(sec, "STATUS") & LOCKED
    write(sec, "LOCK", LOCK_KEY)
    assert sec.locked and read(sec, "STATUS") == LOCKED and read(sec, "LOCK") == 0
    # The register path is closed: writes ignored, ERR_LOCKED.
    write(sec, "KEYSEL", 1)
    assert read(sec, "STATUS") == LOCKED | ERR_LOCKED and read(sec, "KEYSEL") == 0
    write(sec, "STATUS", ERR_LOCKED)
    load_key(sec, 0, bytes(16))  # would replace the key of slot 0
    assert read(sec, "STATUS") == LOCKED | ERR_LOCKED
    assert [sec.slot_loaded(n) for n in range(8)] == [n == 0 for n in range(8)]
    # So is the Python one.
    with pytest.raises(KeysLocked, match="locked"):
        sec.provision_key(1, KEY)
    assert not sec.slot_loaded(1)
    # The keys already there still work: slot 0 still holds KEY.
    bench.ram.put(SRC, PLAINTEXT)
    start(sec, OP_ECB_ENCRYPT, 0, SRC, 64)
    finish(bench)
    assert bench.ram.read(DST, 64) == ECB_CIPHERTEXT


def test_lock_survives_reset_until_unlocked_for_tests(bench: Bench) -> None:
    sec = bench.sec
    sec.provision_key(6, KEY)
    sec.lock()
    sec.reset()
    assert sec.locked and read(sec, "STATUS") == LOCKED and sec.slot_loaded(6)
    with pytest.raises(KeysLocked):
        sec.provision_key(6, bytes(16))
    sec.unlock_for_tests()
    assert not sec.locked and read(sec, "STATUS") == 0
    assert sec.slot_loaded(6)  # keys stay
    load_key(sec, 2, KEY)
    assert sec.slot_loaded(2) and read(sec, "STATUS") == 0


# ---- errors ----


@pytest.mark.parametrize(("src", "dst"), [
    (RAM_BASE + RAM_SIZE - 32, DST),  # the source runs off the end of RAM
    (SRC, RAM_BASE - 16),  # the destination lies below it
    (SRC, 0xFFFF_FFF0),  # the destination wraps the address space
], ids=["source", "destination", "wrap"])  # fmt: skip
def test_range_error(bench: Bench, src: int, dst: int) -> None:
    sec = bench.sec
    sec.provision_key(0, KEY)
    before = bytes(bench.ram.data)
    start(sec, OP_CBC_ENCRYPT, 0, src, 64, dst=dst, iv=CBC_IV)
    assert read(sec, "STATUS") == BUSY  # found when memory is accessed
    finish(bench)
    assert read(sec, "STATUS") == DONE | ERR_RANGE
    assert bytes(bench.ram.data) == before  # nothing written
    assert iv(sec) == CBC_IV  # nor the chaining value
    write(sec, "STATUS", DONE | ERR_RANGE)
    assert read(sec, "STATUS") == 0


def test_cmac_range_error_keeps_the_old_tag(bench: Bench) -> None:
    sec = bench.sec
    sec.provision_key(0, KEY)
    bench.ram.put(SRC, PLAINTEXT)
    start(sec, OP_CMAC, 0, SRC, 16)
    finish(bench)
    start(sec, OP_CMAC, 0, RAM_BASE + RAM_SIZE - 8, 16)
    finish(bench)
    assert read(sec, "STATUS") == DONE | ERR_RANGE
    assert mac(sec) == CMAC_TAGS[128]


@pytest.mark.parametrize(("op", "length"), [
    (OP_ECB_ENCRYPT, 20), (OP_CBC_DECRYPT, 8), (5, 16), (7, 0),
])  # fmt: skip
def test_parameter_errors(bench: Bench, op: int, length: int) -> None:
    bench.sec.provision_key(0, KEY)
    start(bench.sec, op, 0, SRC, length)
    assert read(bench.sec, "STATUS") == ERR_PARAM
    assert bench.clock.next_deadline() is None


def test_start_while_busy_is_ignored(bench: Bench) -> None:
    sec = bench.sec
    sec.provision_key(0, KEY)
    bench.ram.put(SRC, PLAINTEXT)
    t0 = bench.clock.cycles
    start(sec, OP_ECB_ENCRYPT, 0, SRC, 64)
    bench.clock.advance_to(t0 + 100)
    start(sec, OP_ECB_DECRYPT, 0, SRC, 16, dst=DST + 0x80)  # new parameters, START again
    assert read(sec, "STATUS") == BUSY | ERR_BUSY
    assert CTRL.field("OP").get(read(sec, "CTRL")) == OP_ECB_DECRYPT  # the register changed
    bench.clock.advance_to(t0 + 450)
    assert read(sec, "STATUS") == DONE | ERR_BUSY  # the first operation ended on time
    assert bench.ram.read(DST, 64) == ECB_CIPHERTEXT  # with its own parameters
    assert bench.ram.read(DST + 0x80, 16) == bytes(16)


# ---- timing and the interrupt ----


@pytest.mark.parametrize(("op", "length", "blocks"), [
    (OP_ECB_ENCRYPT, 64, 4), (OP_CBC_DECRYPT, 16, 1), (OP_CMAC, 40, 3), (OP_CMAC, 0, 1),
    (OP_ECB_DECRYPT, 0, 0),
])  # fmt: skip
def test_done_exactly_after_setup_and_blocks(op: int, length: int, blocks: int) -> None:
    b = Bench(cycles_per_block=37)
    sec = b.sec
    sec.provision_key(0, KEY)
    b.ram.put(SRC, PLAINTEXT)
    b.clock.advance_to(1000)
    write(sec, "MAC", 0xDEAD, 0)  # read-only: ignored
    start(sec, op, 0, SRC, length, iv=CBC_IV)
    end = 1000 + 50 + blocks * 37
    assert b.clock.next_deadline() == end
    b.clock.advance_to(end - 1)
    assert read(sec, "STATUS") == BUSY
    assert b.ram.read(DST, 64) == bytes(64)  # no result before DONE
    assert mac(sec) == bytes(16)
    assert iv(sec) == CBC_IV
    b.clock.advance_to(end)
    assert read(sec, "STATUS") == DONE
    if op == OP_CMAC:
        assert mac(sec) == CMAC_TAGS[length * 8]
    elif length:
        assert b.ram.read(DST, length) != bytes(length)


def test_default_timing_and_done_interrupt(bench: Bench) -> None:
    sec = bench.sec
    sec.provision_key(0, KEY)
    bench.ram.put(SRC, PLAINTEXT)
    write(sec, "IE", IE.pack(DONE=1))
    bench.clock.advance_to(500)
    start(sec, OP_CMAC, 0, SRC, 64)  # 4 blocks: 50 + 4 x 100 cycles
    bench.clock.advance_to(10_000)
    assert bench.irq.changes == [(950, True)]
    assert mac(sec) == CMAC_TAGS[512]
    write(sec, "STATUS", DONE)
    assert not bench.irq.level
    # An accepted START clears DONE (and with it the line); the next DONE raises it again.
    write(sec, "IE", 0)
    start(sec, OP_CMAC, 0, SRC, 64)
    finish(bench)
    assert not bench.irq.level  # disabled
    write(sec, "IE", IE.pack(DONE=1))
    assert bench.irq.level  # enabling with DONE pending raises the line
    start(sec, OP_CMAC, 0, SRC, 16)
    assert not bench.irq.level and read(sec, "STATUS") == BUSY
    finish(bench)
    assert bench.irq.level


def test_error_interrupt(bench: Bench) -> None:
    sec = bench.sec
    write(sec, "IE", IE.pack(ERR=1))
    start(sec, OP_ECB_ENCRYPT, 0, SRC, 16)  # empty slot
    assert bench.irq.level
    write(sec, "STATUS", ERR_SLOT_EMPTY)
    assert not bench.irq.level
    read(sec, "KEYDATA", 1)
    assert bench.irq.level


def test_reset_drops_a_running_operation(bench: Bench) -> None:
    sec = bench.sec
    sec.provision_key(0, KEY)
    bench.ram.put(SRC, PLAINTEXT)
    write(sec, "IE", IE.pack(DONE=1))
    start(sec, OP_ECB_ENCRYPT, 0, SRC, 64)
    write(sec, "KEYSEL", 3)
    write(sec, "KEYDATA", 0x1111, 0)  # a half-written key
    sec.reset()
    bench.clock.advance_to(10_000)
    assert read(sec, "STATUS") == 0 and not bench.irq.level
    assert bench.ram.read(DST, 64) == bytes(64)
    assert sec.slot_loaded(0)  # keys are kept
    write(sec, "KEYSEL", 3)
    for i in (1, 2, 3):
        write(sec, "KEYDATA", 0x2222, i)
    assert not sec.slot_loaded(3)  # the window was emptied


# ---- RNG ----


def splitmix64(seed: int, n: int) -> list[int]:
    """The reference generator (Steele, Lea, Flood), upper 32 bits of each output."""
    mask, state, out = (1 << 64) - 1, seed, []
    for _ in range(n):
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 & mask
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB & mask
        out.append((z ^ (z >> 31)) >> 32)
    return out


def test_rng_is_deterministic_per_seed() -> None:
    def draws(seed: int, n: int = 16) -> list[int]:
        sec = Bench(seed=seed).sec
        return [read(sec, "RNG") for _ in range(n)]

    assert draws(0)[0] == 0xE220A839  # SplitMix64's first output from 0: 0xE220A8397B1DCDAF
    assert draws(0) == draws(0) == splitmix64(0, 16)
    assert draws(42) == splitmix64(42, 16)
    assert draws(0) != draws(1) and draws(1) != draws(2)
    assert len(set(draws(7, 64))) == 64


def test_rng_keeps_running_across_reset(bench: Bench) -> None:
    sec = bench.sec
    first = [read(sec, "RNG") for _ in range(3)]
    sec.reset()
    assert first + [read(sec, "RNG") for _ in range(3)] == splitmix64(0, 6)


# ---- snapshots ----


def test_snapshot_restore_round_trips_keys_lock_and_rng(bench: Bench) -> None:
    sec = bench.sec
    load_key(sec, 1, KEY)
    write(sec, "KEYSEL", 2)
    write(sec, "KEYDATA", words(KEY)[0], 0)  # half a key in the window
    write(sec, "IE", IE.pack(DONE=1))
    read(sec, "RNG")
    sec.lock()
    snap = sec.snapshot()
    expected_rng = splitmix64(0, 3)[1:]

    sec.unlock_for_tests()
    sec.provision_key(1, bytes(16))  # another key in slot 1
    sec.provision_key(4, KEY)
    read(sec, "RNG")
    write(sec, "IE", 0)

    sec.restore(snap)
    assert sec.locked and read(sec, "STATUS") == LOCKED
    assert [sec.slot_loaded(n) for n in range(8)] == [n == 1 for n in range(8)]
    assert read(sec, "IE") == IE.pack(DONE=1)
    assert [read(sec, "RNG") for _ in range(2)] == expected_rng
    bench.ram.put(SRC, PLAINTEXT)
    start(sec, OP_ECB_ENCRYPT, 1, SRC, 64)
    finish(bench)
    assert bench.ram.read(DST, 64) == ECB_CIPHERTEXT  # slot 1 holds KEY again
    sec.unlock_for_tests()
    write(sec, "KEYSEL", 2)  # KEYSEL empties the window: the restored half key is gone
    for i in (1, 2, 3):
        write(sec, "KEYDATA", words(KEY)[i], i)
    assert not sec.slot_loaded(2)
    # The snapshot itself was not changed by what followed.
    sec.restore(snap)
    assert [sec.slot_loaded(n) for n in range(8)] == [n == 1 for n in range(8)]


def test_snapshot_in_the_middle_of_an_operation(bench: Bench) -> None:
    """Restored with the clock (as a machine does), the operation ends as it would have."""
    sec = bench.sec
    sec.provision_key(0, KEY)
    bench.ram.put(SRC, PLAINTEXT)
    start(sec, OP_CBC_ENCRYPT, 0, SRC, 64, iv=CBC_IV)
    bench.clock.advance_to(200)
    snap, clock_state, ram = sec.snapshot(), bench.clock.state(), bytes(bench.ram.data)
    finish(bench)
    assert bench.clock.cycles == 450
    result = bench.ram.read(DST, 64)
    assert result == CBC_CIPHERTEXT

    sec.restore(snap)
    bench.clock.restore(clock_state)
    bench.ram.data[:] = ram
    sec.provision_key(0, bytes(16))  # the running operation latched its key at START
    assert read(sec, "STATUS") == BUSY
    bench.clock.advance_to(449)
    assert read(sec, "STATUS") == BUSY
    bench.clock.advance_to(450)
    assert read(sec, "STATUS") == DONE
    assert bench.ram.read(DST, 64) == result


def test_on_the_board_it_macs_flash_and_writes_only_ram(firmware) -> None:
    """Wired into the machine: CMAC over the application's flash as a bootloader would ask
    for it, checked against the cryptography package's own CMAC; a flash DST is refused."""
    from cryptography.hazmat.primitives.ciphers import algorithms
    from cryptography.hazmat.primitives.cmac import CMAC

    from harness import Machine

    m = Machine(firmware["app"])
    sec = m.peripheral("SEC")
    assert isinstance(sec, SecurityUnit)
    key = bytes(range(16))
    sec.provision_key(3, key)
    start(sec, OP_CMAC, 3, 0x0000_0000, 4096)
    m.run_for(ms=1)
    reference = CMAC(algorithms.AES(key))
    reference.update(m.read_memory(0, 4096))
    assert b"".join(read(sec, "MAC", i).to_bytes(4, "big") for i in range(4)) == (
        reference.finalize())  # fmt: skip
    write(sec, "STATUS", 0xFF)  # clear DONE
    start(sec, OP_ECB_ENCRYPT, 3, 0x2000_0000, 16, dst=0x0001_0000)  # flash: not for SEC
    m.run_for(ms=1)
    assert read(sec, "STATUS") & SECURITY_BLOCK.register("STATUS").field("ERR_RANGE").mask
