"""Security unit (SEC): AES-128 key slots, AES-ECB/CBC, AES-CMAC over memory, and an RNG.

Modelled:
- Eight AES-128 key slots. Firmware writes a key through a window: KEYSEL picks the slot,
  then the four KEYDATA words are written (any order, 32-bit writes); the fourth word written
  stores the key in the slot and empties the window. Keys are never readable: a KEYDATA read
  returns 0 and sets STATUS.ERR_KEY_READ. KEYSTAT shows which slots hold a key.
- Provisioning lock: writing LOCK_KEY (0x4C4F434B, "LOCK") to LOCK closes the key window for
  good. The lock and the keys live in OTP on the real part: here they survive `reset()` (a
  warm reset) and are part of snapshots; only `unlock_for_tests()` opens the lock again. While
  locked, KEYSEL and KEYDATA writes are ignored and set STATUS.ERR_LOCKED; `provision_key`
  raises `KeysLocked`.
- Operations (CTRL.OP): AES-ECB encrypt/decrypt and AES-CBC encrypt/decrypt from SRC to DST,
  and AES-CMAC (NIST SP 800-38B) of SRC into MAC0..3, with the key of slot CTRL.KEYSLOT, over
  LEN bytes (a multiple of 16 for ECB/CBC; any length, 0 included, for CMAC). CTRL.START
  latches OP, KEYSLOT, the slot's key, SRC, DST, LEN and IV: writes to them while BUSY do not
  affect the running operation.
- Timing in virtual time: an operation takes `setup_cycles` (default 50) plus
  `cycles_per_block` (default 100) core cycles per 16-byte block (CMAC: ceil(LEN / 16)
  blocks, at least one; ECB/CBC: LEN / 16, maybe 0). STATUS.BUSY is set meanwhile. Memory is
  read and written, MAC0..3 and (CBC) IV0..3 updated at the cycle the operation ends, the
  cycle DONE is set: results are not visible before. An accepted START clears DONE; the error
  flags are sticky until written 1.
- CBC chaining: at the end of a CBC operation IV0..3 hold its last ciphertext block, so a
  message can be processed in several operations.
- Errors. Refused at START (the operation does not run, no DONE): START while BUSY
  (ERR_BUSY; the running operation goes on), a reserved OP code or a LEN that is not a
  multiple of 16 for ECB/CBC (ERR_PARAM), an empty key slot (ERR_SLOT_EMPTY). Found when the
  operation ends (DONE is set with it, nothing is written): a SRC or DST range outside memory
  (ERR_RANGE), or a source read that meets an uncorrectable ECC error in flash (ERR_BUS: a
  MAC over a torn image is never computed from wrong bytes). The memory callables report
  such a range by raising ValueError (KeyError is accepted too), a bus error by raising
  `BusError`, and must refuse a range as a whole, before writing any of it.
- IRQ line level = (DONE and IE.DONE) or (any ERR_* flag and IE.ERR).
- RNG: each read (of any size) gives the next value of SplitMix64 (Steele, Lea and Flood,
  2014) whose state starts at `seed`: the upper 32 bits of its next 64-bit output. It is not
  reseeded by a warm reset (real entropy sources do not restart either) and is part of
  snapshots, so a restored run reads the same values.

Register word convention: IV0..3, MAC0..3 and KEYDATA0..3 hold the 16 bytes big-endian,
word n = bytes 4n..4n+3 with byte 4n in bits 31..24: the words read like the hex strings of
NIST's documents (little-endian firmware loading them from a byte buffer byte-swaps, REV).

A warm reset (`reset()`) clears the registers, the key window and any running operation
(its results are lost); keys, lock and RNG state are kept.

Not modelled: AES-192/256, other modes (CTR, GCM), DMA requests, key derivation, secure
boot, side-channel behaviour, bus errors on writes, a true entropy source.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from harness.clock import VirtualClock
from harness.errors import BusError, SimulationError
from harness.peripherals.base import IrqLine, Peripheral
from harness.regs.dsl import Access, Block, Field, Register, word

log = logging.getLogger(__name__)

SLOTS = 8
BLOCK_BYTES = 16
KEY_BYTES = 16  # AES-128
LOCK_KEY = 0x4C4F434B  # "LOCK": a value firmware does not write to LOCK by accident

# CTRL.OP codes
OP_ECB_ENCRYPT, OP_ECB_DECRYPT, OP_CBC_ENCRYPT, OP_CBC_DECRYPT, OP_CMAC = range(5)

RO, WO, W1C = Access.RO, Access.WO, Access.W1C

SECURITY_BLOCK = Block(
    "SEC",
    0x400,
    (
        Register("CTRL", 0x00, (
            Field("START", 0, 1, WO, doc="Write 1: start the operation OP with KEYSLOT's key "
                                         "(ignored with ERR_BUSY while BUSY); reads 0"),
            Field("OP", 4, 3, doc="Operation: 0 AES-ECB encrypt, 1 AES-ECB decrypt, 2 AES-CBC "
                                  "encrypt, 3 AES-CBC decrypt, 4 AES-CMAC; 5..7 reserved "
                                  "(ERR_PARAM)"),
            Field("KEYSLOT", 8, 3, doc="Key slot the operation uses"),
        ), "Control"),
        Register("STATUS", 0x04, (
            Field("BUSY", 0, 1, RO, doc="An operation is running"),
            Field("DONE", 1, 1, W1C, doc="The operation ended (results visible; check ERR_RANGE)"),
            Field("ERR_KEY_READ", 2, 1, W1C, doc="KEYDATA was read (it reads 0)"),
            Field("ERR_SLOT_EMPTY", 3, 1, W1C, doc="START with an empty KEYSLOT: not run"),
            Field("ERR_RANGE", 4, 1, W1C, doc="SRC or DST range outside memory: nothing "
                                              "written (set with DONE)"),
            Field("ERR_LOCKED", 5, 1, W1C, doc="KEYSEL or KEYDATA written while LOCKED: "
                                               "ignored"),
            Field("ERR_BUSY", 6, 1, W1C, doc="START while BUSY: ignored"),
            Field("ERR_PARAM", 7, 1, W1C, doc="START with a reserved OP, or a LEN that is not "
                                              "a multiple of 16 for ECB/CBC: not run"),
            Field("ERR_BUS", 8, 1, W1C, doc="A source read met an uncorrectable ECC error: "
                                            "nothing written, MAC unchanged (set with DONE)"),
            Field("LOCKED", 16, 1, RO, doc="Key provisioning is locked (until unlocked in OTP)"),
        ), "Status (flags: write 1 to clear)"),
        Register("IE", 0x08, (
            Field("DONE", 0, doc="Interrupt when DONE is set"),
            Field("ERR", 1, doc="Interrupt while any ERR_* flag is set"),
        ), "Interrupt enable"),
        word("SRC", 0x10, doc="Source address (data to encrypt, decrypt or authenticate)"),
        word("DST", 0x14, doc="Destination address (ECB/CBC output, LEN bytes)"),
        word("LEN", 0x18, doc="Length in bytes (a multiple of 16 for ECB/CBC)"),
        word("IV", 0x20, doc="CBC initialisation vector, big-endian words; the next chaining "
                             "value after a CBC operation", count=4),
        word("MAC", 0x30, RO, doc="AES-CMAC tag, big-endian words", count=4),
        Register("KEYSEL", 0x40, (Field("SLOT", 0, 3, doc="Slot the KEYDATA words go to"),),
                 "Key window: slot select (empties the window)"),
        Register("KEYSTAT", 0x44, (Field("LOADED", 0, SLOTS, RO, doc="Bit n: slot n holds "
                                                                     "a key"),),
                 "Key slots holding a key"),
        word("KEYDATA", 0x50, WO, doc="Key window: key words, big-endian; the fourth written "
                                      "stores the key; reads 0 and set ERR_KEY_READ", count=4),
        word("RNG", 0x60, RO, doc="Random number: each read the next 32-bit value"),
        word("LOCK", 0x70, WO, doc="Write 0x4C4F434B to lock key provisioning for good"),
    ),
    "Security unit: AES-128 key slots, AES-ECB/CBC, AES-CMAC, RNG",
)  # fmt: skip

_reg = SECURITY_BLOCK.register
_CTRL = _reg("CTRL").codec("START", "OP", "KEYSLOT")
_START = _reg("CTRL").field("START").mask
_STATUS = _reg("STATUS")
_BUSY, _DONE, _LOCKED = (_STATUS.field(n).mask for n in ("BUSY", "DONE", "LOCKED"))
_ERR_KEY_READ, _ERR_SLOT_EMPTY, _ERR_RANGE, _ERR_LOCKED, _ERR_BUSY, _ERR_PARAM, _ERR_BUS = (
    _STATUS.field(f"ERR_{n}").mask
    for n in ("KEY_READ", "SLOT_EMPTY", "RANGE", "LOCKED", "BUSY", "PARAM", "BUS")
)
_ERRORS = (_ERR_KEY_READ | _ERR_SLOT_EMPTY | _ERR_RANGE | _ERR_LOCKED | _ERR_BUSY | _ERR_PARAM
           | _ERR_BUS)
_IE_DONE, _IE_ERR = (_reg("IE").field(n).mask for n in ("DONE", "ERR"))
_KEYSEL_OFFSET = _reg("KEYSEL").offset
_KEYDATA_OFFSET = _reg("KEYDATA").offset
_KEYDATA_WORDS = range(_KEYDATA_OFFSET, _KEYDATA_OFFSET + 4 * _reg("KEYDATA").count, 4)

_MASK64 = (1 << 64) - 1


class KeysLocked(SimulationError):
    """Key provisioning was asked for after the lock."""


@dataclass(frozen=True, slots=True)
class _Job:
    """A running operation, as latched at START (immutable: snapshots share it)."""

    op: int
    key: bytes
    src: int
    dst: int
    length: int
    iv: bytes


def _words(data: bytes) -> list[int]:
    return [int.from_bytes(data[i : i + 4], "big") for i in range(0, len(data), 4)]


def _bytes(words: list[int]) -> bytes:
    return b"".join(w.to_bytes(4, "big") for w in words)


class SecurityUnit(Peripheral):
    block = SECURITY_BLOCK
    extra_state: ClassVar[tuple[str, ...]] = ("_keys", "_locked", "_window", "_job", "_rng")

    def __init__(
        self,
        name: str,
        base: int,
        clock: VirtualClock,
        irq: IrqLine,
        read_memory: Callable[[int, int], bytes],
        write_memory: Callable[[int, bytes], None],
        seed: int = 0,
        cycles_per_block: int = 100,
        setup_cycles: int = 50,
    ) -> None:
        super().__init__(name, base, clock)
        if cycles_per_block < 0 or setup_cycles < 0:
            raise ValueError(f"{name}: cycles_per_block and setup_cycles must not be negative, "
                             f"got {cycles_per_block} and {setup_cycles}")  # fmt: skip
        self.cycles_per_block = cycles_per_block
        self.setup_cycles = setup_cycles
        self._irq = irq
        self._read_memory = read_memory
        self._write_memory = write_memory
        self._keys: list[bytes | None] = [None] * SLOTS
        self._locked = False
        self._window: list[int | None] = [None] * 4  # KEYDATA words written so far
        self._job: _Job | None = None
        self._rng = seed & _MASK64
        self._finish = self.deadline(self._complete)
        self.regs.on_write["CTRL"] = self._ctrl_written
        self.regs.on_write["STATUS"] = lambda _i, _w, _n: self.update_interrupts()
        self.regs.on_write["IE"] = lambda _i, _w, _n: self.update_interrupts()
        self.regs.on_write["LOCK"] = self._lock_written
        self.regs.on_read["STATUS"] = self._read_status
        self.regs.on_read["KEYSTAT"] = lambda _i: self._loaded_mask()
        self.regs.on_read["RNG"] = lambda _i: self._next_random()

    # ---- what tests and the harness use (no call returns a key) ----

    @property
    def locked(self) -> bool:
        return self._locked

    @property
    def busy(self) -> bool:
        return self._job is not None

    def provision_key(self, slot: int, key: bytes) -> None:
        """Store an AES-128 key in `slot`, as a provisioning station would; refused once
        locked."""
        self._check_slot(slot)
        if len(key) != KEY_BYTES:
            raise ValueError(f"{self.name}: an AES-128 key is {KEY_BYTES} bytes, got {len(key)}")
        if self._locked:
            raise KeysLocked(f"{self.name}: key provisioning is locked; slot {slot} unchanged")
        self._keys[slot] = bytes(key)

    def lock(self) -> None:
        """Lock key provisioning, as the firmware's LOCK write does."""
        self._locked = True
        self._window = [None] * 4

    def unlock_for_tests(self) -> None:
        """Open the lock again (the part's OTP cannot; a test's fresh device can). Keys stay."""
        self._locked = False

    def slot_loaded(self, slot: int) -> bool:
        self._check_slot(slot)
        return self._keys[slot] is not None

    def _check_slot(self, slot: int) -> None:
        if not 0 <= slot < SLOTS:
            raise ValueError(f"{self.name}: key slot {slot} out of range 0..{SLOTS - 1}")

    # ---- register side ----

    def reset(self) -> None:
        super().reset()  # also drops a running operation's deadline
        self._job = None
        self._window = [None] * 4
        self.update_interrupts()

    def read(self, offset: int, size: int) -> int:
        if offset & ~3 in _KEYDATA_WORDS:
            self._flag(_ERR_KEY_READ)
            return 0
        return self.regs.read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        word_offset = offset & ~3
        if word_offset == _KEYSEL_OFFSET or word_offset in _KEYDATA_WORDS:
            if self._locked:
                self._flag(_ERR_LOCKED)
                return
            if word_offset == _KEYSEL_OFFSET:
                self.regs.write(offset, value, size)
                self._window = [None] * 4  # a half-written key never reaches another slot
                return
            if size != 4 or offset & 3:
                # Key words are written whole; a partial write would leave a key half-known.
                log.warning("%s: %d-byte write to KEYDATA ignored (32-bit writes only)",
                            self.name, size)  # fmt: skip
                return
            self._key_word((word_offset - _KEYDATA_OFFSET) // 4, value & 0xFFFFFFFF)
            return
        self.regs.write(offset, value, size)

    def update_interrupts(self) -> None:
        status, ie = self.regs["STATUS"], self.regs["IE"]
        self._irq.set(bool((status & _DONE and ie & _IE_DONE)
                           or (status & _ERRORS and ie & _IE_ERR)))  # fmt: skip

    def _flag(self, bits: int) -> None:
        self.regs["STATUS"] = self.regs["STATUS"] | bits
        self.update_interrupts()

    def _read_status(self, _i: int) -> int:
        # BUSY and LOCKED are the model's state, not stored bits: a restore cannot split them.
        live = (_BUSY if self._job is not None else 0) | (_LOCKED if self._locked else 0)
        return (self.regs["STATUS"] & ~(_BUSY | _LOCKED)) | live

    def _loaded_mask(self) -> int:
        return sum(1 << n for n, key in enumerate(self._keys) if key is not None)

    def _key_word(self, index: int, value: int) -> None:
        window = self._window
        window[index] = value
        if all(w is not None for w in window):
            slot = self.regs.get_field("KEYSEL", "SLOT")
            self._keys[slot] = _bytes([w for w in window if w is not None])
            self._window = [None] * 4  # the key is not kept outside its slot

    def _lock_written(self, _i: int, written: int, _new: int) -> None:
        self.regs["LOCK"] = 0  # nothing stored: the lock is in OTP
        if written == LOCK_KEY:
            self.lock()
        else:
            log.warning("%s: LOCK written with 0x%08X, not 0x%08X: ignored", self.name, written,
                        LOCK_KEY)  # fmt: skip

    def _next_random(self) -> int:
        # SplitMix64: add the golden-ratio increment, then mix.
        self._rng = (self._rng + 0x9E3779B97F4A7C15) & _MASK64
        z = self._rng
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        return (z ^ (z >> 31)) >> 32

    # ---- operations ----

    def _ctrl_written(self, _i: int, written: int, new: int) -> None:
        if not written & _START:
            return
        self.regs["CTRL"] = new & ~_START  # START is a command, not a state
        if self._job is not None:
            self._flag(_ERR_BUSY)
            return
        _, op, slot = _CTRL.unpack(new)
        length = self.regs["LEN"]
        errors = 0
        if op > OP_CMAC or (op != OP_CMAC and length % BLOCK_BYTES):
            errors |= _ERR_PARAM
        key = self._keys[slot]
        if key is None:
            errors |= _ERR_SLOT_EMPTY
        if errors or key is None:
            self._flag(errors)
            return
        iv = _bytes(self.regs.values["IV"])
        self._job = _Job(op, key, self.regs["SRC"], self.regs["DST"], length, iv)
        blocks = -(-length // BLOCK_BYTES)
        if op == OP_CMAC:
            blocks = max(blocks, 1)  # the empty message is one padded block
        self.regs["STATUS"] = self.regs["STATUS"] & ~_DONE
        self._finish.arm_at(self.clock.cycles + self.setup_cycles + blocks * self.cycles_per_block)
        self.update_interrupts()

    def _complete(self) -> None:
        job, self._job = self._job, None
        if job is None:  # cannot happen: the deadline is armed only with a job
            return
        flags = _DONE
        try:
            self._run(job)
        except (ValueError, KeyError) as e:
            log.info("%s: operation %d outside memory: %s", self.name, job.op, e)
            flags |= _ERR_RANGE
        except BusError as e:
            log.info("%s: operation %d: bus error: %s", self.name, job.op, e)
            flags |= _ERR_BUS
        self._flag(flags)

    def _run(self, job: _Job) -> None:
        for start in (job.src, job.dst):
            if start + job.length > 1 << 32:
                raise ValueError(f"0x{start:08X} + {job.length} bytes wraps the address space")
        data = self._read_memory(job.src, job.length) if job.length else b""
        if len(data) != job.length:
            raise ValueError(f"read {len(data)} bytes of {job.length} at 0x{job.src:08X}")
        aes = algorithms.AES(job.key)
        if job.op == OP_CMAC:
            mac = cmac.CMAC(aes)
            mac.update(data)
            self.regs.values["MAC"] = _words(mac.finalize())
            return
        ecb = job.op in (OP_ECB_ENCRYPT, OP_ECB_DECRYPT)
        mode: modes.ECB | modes.CBC = modes.ECB() if ecb else modes.CBC(job.iv)
        cipher = Cipher(aes, mode)
        encrypt = job.op in (OP_ECB_ENCRYPT, OP_CBC_ENCRYPT)
        context = cipher.encryptor() if encrypt else cipher.decryptor()
        out = context.update(data) + context.finalize()
        if job.length:
            self._write_memory(job.dst, out)
        if job.op in (OP_CBC_ENCRYPT, OP_CBC_DECRYPT) and job.length:
            self.regs.values["IV"] = _words((out if encrypt else data)[-BLOCK_BYTES:])
