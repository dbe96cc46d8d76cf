"""FLC: the flash controller of an ASIL-B MCU with ECC flash (program, sector erase, SEC-DED).

The flash array itself is the machine's memory: a writable `memoryview` of the whole flash
region (the CPU executes and reads from it directly, with no hook), at CPU address
`flash_base`. The model changes it only at the end of an operation (or when a fault is
injected) and then calls `code_changed(start, end)` with the CPU addresses of the changed
bytes (end exclusive) so that the emulator drops translated code.

Flash geometry:
- Program unit: 8 bytes at an 8-aligned address, plus one ECC byte kept in the model
  (`ecc`, a bytearray with one byte per unit).
- Sectors: `sectors`, a sequence of (offset, size) from the start of flash, e.g. a 64 KB
  bootloader sector then 16 KB sectors. CR.SECTOR is an index into it.
- Write protection: `protected`, a sequence of (offset, size) ranges from the start of flash
  (the bootloader). Programming a unit in, or erasing a sector that overlaps, such a range
  is refused with SR.WRPERR: never silently.

ECC: an extended Hamming (72,64) SEC-DED code. Data bit k (bit k % 8 of byte k // 8 of the
unit) sits at the k-th position of 3..71 that is not a power of two; check bit i (ECC bit i,
i = 0..6) at position 2**i is the parity of the data bits whose position has bit i set; ECC
bit 7 is the parity of all 71 other bits. The stored byte is that value XOR a constant
(`ERASED_XOR`) chosen so that the ECC of all-ones data is 0xFF: an erased unit is 72 ones, a
valid codeword, and reads clean. Why this choice (rather than an "erased" marker): an erase
physically sets every cell, the ECC cells too, so the part needs no special case for blank
flash, blank checks and reads of erased flash never trip ECC, and programming an erased unit
only clears bits (1 -> 0), data and ECC alike, as NOR flash does. Adding a constant keeps the
code's minimum distance (4), so it still corrects every single-bit and detects every
double-bit error. (Parts differ: some instead flag erased units, some report ECC errors on
blank reads.)

Raw versus corrected data: the memoryview holds what a read returns. For a unit with a
single-bit error, that is the corrected data while the stored (raw) bits differ: the model
keeps the raw data of such units in `raw` (a dict unit -> 64-bit int), so a read through
`ecc_read` finds the error again each time (no scrubbing). For an uncorrectable unit the
memoryview holds the raw (wrong) data and `check_fetch` reports "double".

Registers (block "FLC", 0x400 bytes):

- KEY (+0x00, write-only): the unlock sequence KEY1 (0x45670123) then KEY2 (0xCDEF89AB)
  clears CR.LOCK. Any other value, a key out of order, or any key written while unlocked is
  a wrong key: it sets SR.KEYERR and locks the controller (CR.LOCK = 1) until `reset()`;
  keys written meanwhile are ignored (and set SR.KEYERR again).
- CR (+0x04): OP[1:0] (0 none, 1 program, 2 sector erase), SECTOR[15:8] (index into
  `sectors`), START[16] (write-only: writing 1 starts OP; reads 0), EOPIE[24] (end-of-
  operation interrupt enable), ERRIE[25] (error interrupt enable), LOCK[31] (reset 1; write 1
  to lock; writing 0 has no effect: only the key sequence unlocks). While locked, a write
  that would change any CR field or sets START is refused as a whole and sets SR.LOCKERR.
- ADDR (+0x08): the CPU address of the unit to program (8-aligned). Writable while locked.
- DATA0 (+0x0C), DATA1 (+0x10): the 8 bytes to program, little-endian: DATA0 holds bytes
  0..3 (byte 0 in bits 7:0), DATA1 bytes 4..7. Writable while locked.
- SR (+0x14): BUSY[0] (read-only); EOP[1] (end of operation); PGSERR[2] (program of a unit
  that is not erased: its stored data or ECC bits are not all ones); PGAERR[3] (program
  address misaligned or outside flash, or a SECTOR index past the last sector); WRPERR[4]
  (protected region); LOCKERR[5] (CR write or START while locked); KEYERR[6] (wrong key);
  ECCC[8] (a single-bit error was corrected on a read); ECCD[9] (a double-bit error was
  detected). All flags but BUSY are write-1-to-clear and sticky.
- ECCADDR (+0x18, read-only): the CPU address of the unit of the last ECC event.
- ECCCOUNT (+0x1C, read-only): single-bit errors corrected since reset (saturates). Each
  `ecc_read` counts each corrected unit it reads once.

Operations. START latches OP, SECTOR, ADDR, DATA0 and DATA1. It is checked at once, in this
order: LOCKERR, then PGAERR, WRPERR, PGSERR; a refused operation does not run, sets only its
error flag (no BUSY, no EOP) and is not counted in `operations`. An accepted START clears
EOP, sets BUSY, and the operation ends `program_us` (a unit) or `erase_ms_per_16k` scaled by
the sector size (an erase) later, rounded up to whole core cycles at `clock.hz`. The flash
changes at that end cycle, when BUSY clears and EOP is set. START with OP 0 or while BUSY is
ignored with a warning (the running operation goes on). IRQ level = (EOP and EOPIE) or (any
of PGSERR, PGAERR, WRPERR, LOCKERR, KEYERR, ECCD and ERRIE); ECCC does not interrupt.
Programming clears bits only (NOR): the unit becomes old AND new, data and ECC.

Power loss: `operations` counts the operations started (accepted) since construction, the
first being index 0. `cut_power(at, phase)` arms a cut at operation index `at`:
- "before": the operation never starts: at its START `power_cut()` is called, the flash and
  SR are unchanged (no BUSY).
- "during": the operation is torn at its midpoint (start + duration // 2 cycles): BUSY
  clears, no EOP, and `power_cut()` is called. The torn bits come from `torn_mask(index)`, a
  72-bit mask (the first SplitMix64 output from state `index` for data bits 0..63, the low
  byte of the second for ECC bits 0..7). A torn program clears exactly those of the bits the
  program would clear (1 -> 0, data and ECC) that are set in the mask. A torn erase proceeds
  unit by unit from the sector's start: the first n // 2 of its n units are erased, unit
  n // 2 is torn (of its bits that the erase would set, 0 -> 1, those set in the mask are
  set) and the rest are untouched. A torn unit's ECC then usually no longer matches: the
  model decodes it like any other unit (clean, corrected or uncorrectable as the bits fall).
- "after": the operation completes (flash written, EOP, IRQ), then `power_cut()` is called.
Each cut fires once and is recorded in `cuts` as (index, phase, cycle).

`reset()` (any reset, the machine's power-up after a cut included): registers back to reset
values (locked, the key sequence restarted, a wrong-key lock lifted), an operation in flight
is abandoned with its data untouched (the reset hits before its end, when the flash would
change: the model does not tear on a reset, only `cut_power(..., "during")` tears). The
flash, the ECC bytes, raw data, `operations`, `corrected_total`, `cuts` and a pending cut
persist.

Snapshots: the memoryview is the machine's memory and is saved by the machine; the model's
snapshot holds its registers, deadlines, ECC bytes, raw data of corrected units, key state,
operation in flight, pending cut and counters.

Python API (tests and the machine): `ecc_read(address, length)`, `check_fetch(address,
length)`, `flip_bit(address, bit)`, `flip_ecc_bit(address, bit)`, `cut_power(at, phase)`,
`resync_ecc(start, end)` (after bytes were written into the memoryview behind the model's
back, e.g. loading an image), `unit_status(address)`, `operations`, `cuts`, `busy`,
`locked`, `corrected_total`. The constructor computes the ECC of the memoryview's initial
contents.

CPU reads (what the machine does with `watched_ranges`): the machine watches every unit that
is not clean (`faulty`) and, while an operation runs, the whole physical bank it works on
(`banks`: (offset, size) ranges; read-while-write works only across banks). A CPU read or
instruction fetch of a single-bit unit goes through `ecc_read` (corrected, flagged and
counted); of a double-bit unit it sets ECCD and is a precise bus fault; of the busy bank it
stalls the core until the operation ends (dual-bank parts such as STM32's stall, they do not
fault). `on_change` (set by the machine) is called whenever what must be watched changes.

Not modelled: mass erase, option bytes, read protection, program/erase suspend, wait states
and prefetch, erase/program endurance.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from fractions import Fraction
from math import ceil
from typing import Any, ClassVar, NamedTuple

from harness.clock import VirtualClock
from harness.errors import BusError
from harness.peripherals.base import IrqLine, Peripheral
from harness.regs.dsl import Access, Block, Field, Register, word

log = logging.getLogger(__name__)

KEY1 = 0x45670123
KEY2 = 0xCDEF89AB

OP_NONE, OP_PROGRAM, OP_ERASE = 0, 1, 2

UNIT = 8  # bytes per program unit
CLEAN, SINGLE, DOUBLE = "clean", "single", "double"  # unit_status / decode results
BEFORE, DURING, AFTER = "before", "during", "after"  # cut_power phases

RO, WO, W1C = Access.RO, Access.WO, Access.W1C

FLASH_BLOCK = Block(
    "FLC",
    0x400,
    (
        word("KEY", 0x00, WO, doc="Unlock: 0x45670123 then 0xCDEF89AB"),
        Register("CR", 0x04, (
            Field("OP", 0, 2, doc="0 none, 1 program, 2 sector erase"),
            Field("SECTOR", 8, 8, doc="Sector to erase (index)"),
            Field("START", 16, 1, WO, doc="Write 1: start OP"),
            Field("EOPIE", 24, doc="End-of-operation interrupt enable"),
            Field("ERRIE", 25, doc="Error interrupt enable"),
            Field("LOCK", 31, reset=1, doc="Locked (write 1 to lock; the keys unlock)"),
        ), "Control"),
        word("ADDR", 0x08, doc="Address of the unit to program (8-aligned)"),
        word("DATA0", 0x0C, doc="Bytes 0..3 to program"),
        word("DATA1", 0x10, doc="Bytes 4..7 to program"),
        Register("SR", 0x14, (
            Field("BUSY", 0, 1, RO, doc="An operation is running"),
            Field("EOP", 1, 1, W1C, doc="End of operation"),
            Field("PGSERR", 2, 1, W1C, doc="Program of a unit that is not erased"),
            Field("PGAERR", 3, 1, W1C, doc="Misaligned or out-of-flash address or sector"),
            Field("WRPERR", 4, 1, W1C, doc="Write-protected region"),
            Field("LOCKERR", 5, 1, W1C, doc="Write or START while locked"),
            Field("KEYERR", 6, 1, W1C, doc="Wrong key: locked until reset"),
            Field("ECCC", 8, 1, W1C, doc="Single-bit error corrected on a read"),
            Field("ECCD", 9, 1, W1C, doc="Double-bit error detected on a read"),
        ), "Status"),
        word("ECCADDR", 0x18, RO, doc="Address of the unit of the last ECC event"),
        word("ECCCOUNT", 0x1C, RO, doc="Single-bit errors corrected since reset"),
    ),
    "Flash controller",
)  # fmt: skip

_CR = FLASH_BLOCK.register("CR")
_SR = FLASH_BLOCK.register("SR")
_OP, _SECTOR = _CR.field("OP"), _CR.field("SECTOR")
_START, _EOPIE, _ERRIE, _LOCK = (_CR.field(n).mask for n in ("START", "EOPIE", "ERRIE", "LOCK"))
_BUSY, _EOP, _PGSERR, _PGAERR, _WRPERR, _LOCKERR, _KEYERR, _ECCC, _ECCD = (
    _SR.field(n).mask
    for n in ("BUSY", "EOP", "PGSERR", "PGAERR", "WRPERR", "LOCKERR", "KEYERR", "ECCC", "ECCD")
)
_ERRORS = _PGSERR | _PGAERR | _WRPERR | _LOCKERR | _KEYERR | _ECCD
_KEY_OFFSET = FLASH_BLOCK.register("KEY").offset
_CR_OFFSET = _CR.offset
_SR_OFFSET = _SR.offset

_M64 = (1 << 64) - 1
_ERASED_UNIT = b"\xff" * UNIT

# ---- the (72,64) extended Hamming code ----

DATA_POSITIONS: tuple[int, ...] = tuple(p for p in range(3, 72) if p & (p - 1))
_BIT_AT = {p: k for k, p in enumerate(DATA_POSITIONS)}


def _byte_table(i: int) -> tuple[int, ...]:
    out = []
    for v in range(256):
        s = 0
        for b in range(8):
            if v >> b & 1:
                s ^= DATA_POSITIONS[8 * i + b]
        out.append(s)
    return tuple(out)


# _SYNDROME[i][v]: XOR of the code positions of the set bits of byte i when it holds v
_SYNDROME: tuple[tuple[int, ...], ...] = tuple(_byte_table(i) for i in range(UNIT))


def _positions(data: int) -> int:
    """XOR of the code positions of the set data bits."""
    t = _SYNDROME
    return (t[0][data & 0xFF] ^ t[1][data >> 8 & 0xFF] ^ t[2][data >> 16 & 0xFF]
            ^ t[3][data >> 24 & 0xFF] ^ t[4][data >> 32 & 0xFF] ^ t[5][data >> 40 & 0xFF]
            ^ t[6][data >> 48 & 0xFF] ^ t[7][data >> 56])  # fmt: skip


def _linear_ecc(data: int) -> int:
    check = _positions(data)
    parity = (data.bit_count() + check.bit_count()) & 1
    return check | parity << 7


ERASED_XOR = _linear_ecc(_M64) ^ 0xFF  # so that ecc(all ones) == 0xFF


def ecc_of(data: int) -> int:
    """The stored ECC byte of 64-bit data (little-endian: byte 0 in bits 7:0)."""
    return _linear_ecc(data) ^ ERASED_XOR


def decode(data: int, ecc: int) -> tuple[str, int, int]:
    """(status, corrected data, corrected ECC) of a stored unit: status is "clean",
    "single" (one bit, of data or ECC, corrected) or "double" (uncorrectable: returned as
    stored)."""
    e = ecc ^ ERASED_XOR
    syndrome = _positions(data) ^ (e & 0x7F)
    parity = (data.bit_count() + e.bit_count()) & 1
    if not parity:
        return (CLEAN, data, ecc) if syndrome == 0 else (DOUBLE, data, ecc)
    if syndrome == 0:
        return SINGLE, data, ecc ^ 0x80  # the overall parity bit itself
    if syndrome & (syndrome - 1) == 0:
        return SINGLE, data, ecc ^ syndrome  # check bit log2(syndrome)
    bit = _BIT_AT.get(syndrome)
    if bit is None:  # a position the shortened code does not have: 3 or more bits
        return DOUBLE, data, ecc
    return SINGLE, data ^ (1 << bit), ecc


def _splitmix64(state: int) -> tuple[int, int]:
    """(new state, output) of SplitMix64."""
    state = (state + 0x9E3779B97F4A7C15) & _M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return state, z ^ (z >> 31)


def torn_mask(index: int) -> int:
    """The 72-bit mask of the bits a cut during operation `index` lets change: bits 0..63
    the data bits, bits 64..71 the ECC bits."""
    state, first = _splitmix64(index & _M64)
    _, second = _splitmix64(state)
    return first | (second & 0xFF) << 64


class EccError(BusError):
    """A read met a unit with an uncorrectable (double-bit) error."""

    def __init__(self, address: int) -> None:
        self.address = address
        super().__init__(f"uncorrectable ECC error in the flash unit at 0x{address:08X}")


class _Operation(NamedTuple):
    number: int  # the operation index
    kind: str  # "program" or "erase"
    offset: int  # from the start of flash
    size: int
    data: int  # program: the 64-bit data
    cut: str | None  # the power cut that will hit it: "during", "after" or None


def _exact(value: float | int | Fraction) -> Fraction:
    return Fraction(str(value)) if isinstance(value, float) else Fraction(value)


class FlashController(Peripheral):
    block = FLASH_BLOCK
    extra_state: ClassVar[tuple[str, ...]] = (
        "ecc", "raw", "faulty", "_key_stage", "_key_dead", "_op", "_cut", "operations",
        "corrected_total", "cuts",
    )  # fmt: skip

    def __init__(self, name: str, base: int, clock: VirtualClock, irq: IrqLine,
                 flash: memoryview, flash_base: int, sectors: Sequence[tuple[int, int]],
                 protected: Sequence[tuple[int, int]],
                 code_changed: Callable[[int, int], None], power_cut: Callable[[], None],
                 program_us: float = 16, erase_ms_per_16k: float = 20,
                 banks: Sequence[tuple[int, int]] = ()) -> None:  # fmt: skip
        super().__init__(name, base, clock)
        if flash.readonly:
            raise ValueError(f"{name}: the flash memoryview must be writable")
        flash = flash.cast("B") if flash.format != "B" or flash.ndim != 1 else flash
        if not flash.nbytes or flash.nbytes % UNIT:
            raise ValueError(f"{name}: flash size {flash.nbytes} is not a multiple of {UNIT}")
        if program_us <= 0 or erase_ms_per_16k <= 0:
            raise ValueError(f"{name}: durations must be positive")
        self._flash = flash
        self.flash_base = flash_base
        self.flash_size = flash.nbytes
        self.sectors = tuple((int(o), int(s)) for o, s in sectors)
        self.protected = tuple((int(o), int(s)) for o, s in protected)
        self.banks = tuple((int(o), int(s)) for o, s in banks) or ((0, self.flash_size),)
        self._check_geometry()
        self.on_change: Callable[[], None] | None = None
        self._code_changed = code_changed
        self._power_cut = power_cut
        self._irq = irq
        self.program_cycles = ceil(_exact(program_us) * clock.hz / 1_000_000)
        self._erase_per_byte = _exact(erase_ms_per_16k) * clock.hz / (16384 * 1000)
        self.ecc = bytearray(b"\xff" * (self.flash_size // UNIT))
        self.raw: dict[int, int] = {}  # unit -> stored data, where it differs from the view
        self.faulty: set[int] = set()  # units whose stored bits are not a clean codeword
        self._key_stage = 0
        self._key_dead = False
        self._op: _Operation | None = None
        self._cut: tuple[int, str] | None = None
        self.operations = 0
        self.corrected_total = 0
        self.cuts: list[tuple[int, str, int]] = []
        self._done = self.deadline(self._finish)
        self._tear = self.deadline(self._torn)
        self.resync_ecc()
        self._update_irq()

    def _check_geometry(self) -> None:
        end = 0
        if len(self.sectors) > 1 << _SECTOR.width:
            raise ValueError(f"{self.name}: more than {1 << _SECTOR.width} sectors")
        for offset, size in sorted(self.sectors):
            if offset % UNIT or size <= 0 or size % UNIT or offset + size > self.flash_size:
                raise ValueError(f"{self.name}: sector (0x{offset:X}, 0x{size:X}) is not "
                                 f"whole units inside the flash")  # fmt: skip
            if offset < end:
                raise ValueError(f"{self.name}: sector at 0x{offset:X} overlaps another")
            end = offset + size
        for what, ranges in (("protected range", self.protected), ("bank", self.banks)):
            for offset, size in ranges:
                if offset < 0 or size <= 0 or offset + size > self.flash_size:
                    raise ValueError(f"{self.name}: {what} (0x{offset:X}, 0x{size:X}) is not "
                                     f"inside the flash")  # fmt: skip

    # ---- what tests and the machine use ----

    @property
    def busy(self) -> bool:
        return self._op is not None

    @property
    def locked(self) -> bool:
        return bool(self.regs["CR"] & _LOCK)

    @property
    def key_blocked(self) -> bool:
        """A wrong key locked the controller until reset."""
        return self._key_dead

    def sector_cycles(self, size: int) -> int:
        """Core cycles an erase of `size` bytes takes."""
        return ceil(self._erase_per_byte * size)

    def cut_power(self, at: int, phase: str) -> None:
        """Cut the power at operation index `at` (see the module's documentation)."""
        if phase not in (BEFORE, DURING, AFTER):
            raise ValueError(f"{self.name}: phase must be before, during or after: {phase!r}")
        if at < self.operations:
            raise ValueError(f"{self.name}: operation {at} has already started "
                             f"({self.operations} so far)")  # fmt: skip
        self._cut = (at, phase)

    def cancel_cut(self) -> None:
        """Disarm a cut that has not fired."""
        self._cut = None

    def unit_status(self, address: int) -> str:
        """The stored state of the unit holding `address`: "clean", "single" or "double".

        A query: no flags are set and nothing is counted."""
        unit = self._offset(address, 1) // UNIT
        return decode(self._raw_of(unit), self.ecc[unit])[0]

    def ecc_read(self, address: int, length: int) -> bytes:
        """Read through the ECC: single-bit errors are corrected (ECCC, ECCADDR, counted),
        a double-bit error raises `EccError` with its unit's address (ECCD, ECCADDR)."""
        offset = self._offset(address, length)
        for unit in self._faulty_in(offset, length):
            status = decode(self._raw_of(unit), self.ecc[unit])[0]
            if status == SINGLE:
                self._ecc_event(unit, _ECCC)
                self.corrected_total += 1
                self.regs["ECCCOUNT"] = min(self.regs["ECCCOUNT"] + 1, 0xFFFFFFFF)
            elif status == DOUBLE:
                self._ecc_event(unit, _ECCD)
                raise EccError(self.flash_base + unit * UNIT)
        return bytes(self._flash[offset : offset + length])

    def check_fetch(self, address: int, length: int) -> str | None:
        """For the machine's fetches: "double" if a unit in the range is uncorrectable, else
        None. A query: no flags are set and nothing is counted."""
        offset = self._offset(address, length)
        for unit in self._faulty_in(offset, length):
            if decode(self._raw_of(unit), self.ecc[unit])[0] == DOUBLE:
                return DOUBLE
        return None

    def watched_ranges(self) -> list[tuple[int, int]]:
        """CPU address ranges [start, end) whose reads the machine must see: the units that
        are not clean, and the bank an operation is working on."""
        ranges = [(self.flash_base + u * UNIT, self.flash_base + u * UNIT + UNIT)
                  for u in sorted(self.faulty)]  # fmt: skip
        bank = self.busy_bank()
        if bank is not None:
            ranges.append(bank)
        return ranges

    def busy_bank(self) -> tuple[int, int] | None:
        """[start, end) of the bank the running operation works on (CPU addresses)."""
        if self._op is None:
            return None
        for offset, size in self.banks:
            if offset <= self._op.offset < offset + size:
                return self.flash_base + offset, self.flash_base + offset + size
        return None

    def flip_bit(self, address: int, bit: int) -> None:
        """Fault injection: flip stored data bit `bit` (0..7) of the byte at `address`."""
        if not 0 <= bit < 8:
            raise ValueError(f"{self.name}: bit {bit} is not 0..7")
        offset = self._offset(address, 1)
        unit = offset // UNIT
        flipped = self._raw_of(unit) ^ (1 << (8 * (offset % UNIT) + bit))
        self._store(unit, flipped, self.ecc[unit])

    def flip_ecc_bit(self, address: int, bit: int) -> None:
        """Fault injection: flip bit `bit` (0..7) of the ECC byte of the unit at `address`."""
        if not 0 <= bit < 8:
            raise ValueError(f"{self.name}: bit {bit} is not 0..7")
        unit = self._offset(address, 1) // UNIT
        self._store(unit, self._raw_of(unit), self.ecc[unit] ^ (1 << bit))

    def resync_ecc(self, start: int | None = None, end: int | None = None) -> None:
        """Take the memoryview's bytes in [start, end) (CPU addresses, widened to whole
        units; default: all the flash) as correctly stored: compute their ECC and forget
        raw data there. For contents written into the memoryview behind the model's back."""
        lo = 0 if start is None else start - self.flash_base
        hi = self.flash_size if end is None else end - self.flash_base
        if not 0 <= lo <= hi <= self.flash_size:
            raise ValueError(f"{self.name}: range outside the flash")
        first, last = lo // UNIT, -(-hi // UNIT)
        chunk = 4096 // UNIT
        view = self._flash
        for unit0 in range(first, last, chunk):
            unit1 = min(unit0 + chunk, last)
            if view[unit0 * UNIT : unit1 * UNIT] == b"\xff" * ((unit1 - unit0) * UNIT):
                self.ecc[unit0:unit1] = b"\xff" * (unit1 - unit0)
                continue
            for unit in range(unit0, unit1):
                data = int.from_bytes(view[unit * UNIT : unit * UNIT + UNIT], "little")
                self.ecc[unit] = ecc_of(data)
        for unit in [u for u in self.raw if first <= u < last]:
            del self.raw[unit]
        self._clear_faulty(first, last)

    # ---- register side ----

    def reset(self) -> None:
        super().reset()
        if self._op is not None:
            log.info("%s: reset abandons operation %d (%s): the flash is unchanged",
                     self.name, self._op.number, self._op.kind)  # fmt: skip
        self._op = None
        self._key_stage = 0
        self._key_dead = False
        self._update_irq()
        self._changed()

    def snapshot(self) -> Any:
        values, deadlines, extra = super().snapshot()
        extra["ecc"] = bytes(self.ecc)
        return values, deadlines, extra

    def restore(self, state: Any) -> None:
        super().restore(state)
        self.ecc = bytearray(self.ecc)
        self._update_irq()
        self._changed()

    def write(self, offset: int, size: int, value: int) -> None:
        word_offset = offset & ~3
        if word_offset == _KEY_OFFSET:
            lanes = ((1 << (8 * size)) - 1) << (8 * (offset & 3))
            self._key((value << (8 * (offset & 3))) & lanes)
        elif word_offset == _CR_OFFSET:
            self._write_cr(offset, size, value)
        else:
            self.regs.write(offset, value, size)
            if word_offset == _SR_OFFSET:
                self._update_irq()

    def _update_irq(self) -> None:
        sr, cr = self.regs["SR"], self.regs["CR"]
        self._irq.set(bool((sr & _EOP and cr & _EOPIE) or (sr & _ERRORS and cr & _ERRIE)))

    def _flag(self, bits: int, why: str) -> None:
        self.regs["SR"] = self.regs["SR"] | bits
        log.warning("%s: %s", self.name, why)
        self._update_irq()

    def _key(self, key: int) -> None:
        if self._key_dead:
            self._flag(_KEYERR, f"key 0x{key:08X} ignored: a wrong key locked the controller "
                                "until reset")  # fmt: skip
        elif not self.locked:
            self._wrong_key(key, "the controller is already unlocked")
        elif self._key_stage == 0 and key == KEY1:
            self._key_stage = 1
        elif self._key_stage == 1 and key == KEY2:
            self._key_stage = 0
            self.regs["CR"] = self.regs["CR"] & ~_LOCK
        else:
            self._wrong_key(key, f"expected 0x{KEY2 if self._key_stage else KEY1:08X}")

    def _wrong_key(self, key: int, why: str) -> None:
        self._key_dead = True
        self._key_stage = 0
        self.regs["CR"] = self.regs["CR"] | _LOCK
        self._flag(_KEYERR, f"wrong key 0x{key:08X} ({why}): locked until reset")

    def _write_cr(self, offset: int, size: int, value: int) -> None:
        old = self.regs["CR"]
        lanes = ((1 << (8 * size)) - 1) << (8 * (offset & 3))
        written = (value << (8 * (offset & 3))) & lanes
        if old & _LOCK:
            wanted = (old & ~lanes) | (written & lanes)
            if (wanted ^ old) & ~_LOCK & ~_START or written & _START:
                self._flag(_LOCKERR, "CR write refused: the controller is locked (write "
                                     "the keys first)")  # fmt: skip
            return
        self.regs.write(offset, value, size)
        cr = self.regs["CR"] & ~_START
        self.regs["CR"] = cr
        if written & _START:
            if cr & _LOCK:
                self._flag(_LOCKERR, "START refused: the same write locked the controller")
            else:
                self._start(cr)
        self._update_irq()

    def _start(self, cr: int) -> None:
        if self._op is not None:
            log.warning("%s: START ignored: operation %d is still running", self.name,
                        self._op.number)  # fmt: skip
            return
        op = _OP.get(cr)
        if op == OP_PROGRAM:
            address = self.regs["ADDR"]
            offset = address - self.flash_base
            if address % UNIT or not 0 <= offset < self.flash_size:
                self._flag(_PGAERR, f"program at 0x{address:08X} refused: not an aligned "
                                    "unit inside the flash")  # fmt: skip
            elif self._is_protected(offset, UNIT):
                self._flag(_WRPERR, f"program at 0x{address:08X} refused: write-protected")
            elif self._raw_of(offset // UNIT) != _M64 or self.ecc[offset // UNIT] != 0xFF:
                self._flag(_PGSERR, f"program at 0x{address:08X} refused: not erased")
            else:
                data = self.regs["DATA0"] | self.regs["DATA1"] << 32
                self._begin("program", offset, UNIT, data, self.program_cycles)
        elif op == OP_ERASE:
            index = _SECTOR.get(cr)
            if index >= len(self.sectors):
                self._flag(_PGAERR, f"erase of sector {index} refused: there are "
                                    f"{len(self.sectors)} sectors")  # fmt: skip
                return
            offset, size = self.sectors[index]
            if self._is_protected(offset, size):
                self._flag(_WRPERR, f"erase of sector {index} refused: write-protected")
            else:
                self._begin("erase", offset, size, 0, self.sector_cycles(size))
        else:
            log.warning("%s: START ignored: CR.OP is %d (no operation)", self.name, op)

    def _begin(self, kind: str, offset: int, size: int, data: int, cycles: int) -> None:
        index = self.operations
        self.operations += 1
        cut = None
        if self._cut is not None and self._cut[0] == index:
            cut = self._cut[1]
            self._cut = None
        if cut == BEFORE:
            self._cut_now(index, BEFORE)
            return
        now = self.clock.cycles
        self._op = _Operation(index, kind, offset, size, data, cut)
        self.regs["SR"] = (self.regs["SR"] & ~_EOP) | _BUSY
        self._done.arm_at(now + cycles)
        if cut == DURING:
            self._tear.arm_at(now + cycles // 2)
        self._update_irq()
        self._changed()  # its bank is busy: reads there stall

    def _finish(self) -> None:
        op = self._op
        assert op is not None
        self._op = None
        self._tear.disarm()
        if op.kind == "program":
            unit = op.offset // UNIT
            self._store(unit, self._raw_of(unit) & op.data, self.ecc[unit] & ecc_of(op.data))
        else:
            self._erase(op.offset, op.size)
        self.regs["SR"] = (self.regs["SR"] & ~_BUSY) | _EOP
        self._update_irq()
        self._changed()
        if op.cut == AFTER:
            self._cut_now(op.number, AFTER)

    def _torn(self) -> None:
        op = self._op
        assert op is not None
        self._op = None
        self._done.disarm()
        mask = torn_mask(op.number)
        if op.kind == "program":
            unit = op.offset // UNIT
            raw, ecc = self._raw_of(unit), self.ecc[unit]
            clear_data = raw & ~op.data & mask & _M64
            clear_ecc = ecc & ~ecc_of(op.data) & (mask >> 64)
            self._store(unit, raw & ~clear_data, ecc & ~clear_ecc)
        else:
            half = op.size // UNIT // 2
            if half:
                self._erase(op.offset, half * UNIT)
            unit = op.offset // UNIT + half
            if half * UNIT < op.size:
                raw, ecc = self._raw_of(unit), self.ecc[unit]
                self._store(unit, raw | (~raw & mask & _M64), ecc | (~ecc & (mask >> 64)))
        self.regs["SR"] = self.regs["SR"] & ~_BUSY
        self._update_irq()
        self._changed()
        self._cut_now(op.number, DURING)

    def _cut_now(self, index: int, phase: str) -> None:
        self.cuts.append((index, phase, self.clock.cycles))
        log.info("%s: power cut %s operation %d", self.name, phase, index)
        self._power_cut()  # last: the machine may reset this model in it

    # ---- stored units ----

    def _offset(self, address: int, length: int) -> int:
        offset = address - self.flash_base
        if length < 0 or offset < 0 or offset + length > self.flash_size:
            raise ValueError(f"{self.name}: 0x{address:08X}+{length} is outside the flash")
        return offset

    @staticmethod
    def _units(offset: int, length: int) -> range:
        return range(offset // UNIT, -(-(offset + length) // UNIT)) if length else range(0)

    def _faulty_in(self, offset: int, length: int) -> list[int]:
        """The units of a range that are not clean, in address order: only they can be."""
        if not self.faulty:
            return []
        units = self._units(offset, length)
        if len(units) <= len(self.faulty):
            return [u for u in units if u in self.faulty]
        return sorted(u for u in self.faulty if u in units)

    def _is_protected(self, offset: int, size: int) -> bool:
        return any(p < offset + size and offset < p + n for p, n in self.protected)

    def _raw_of(self, unit: int) -> int:
        raw = self.raw.get(unit)
        if raw is not None:
            return raw
        return int.from_bytes(self._flash[unit * UNIT : unit * UNIT + UNIT], "little")

    def _store(self, unit: int, raw: int, ecc: int) -> None:
        """Store a unit's bits; the view shows them corrected when a single bit is wrong."""
        self.ecc[unit] = ecc
        status, fixed, _ = decode(raw, ecc)
        if (status != CLEAN) != (unit in self.faulty):
            if status == CLEAN:
                self.faulty.discard(unit)
            else:
                self.faulty.add(unit)
            self._changed()
        shown = fixed if status == SINGLE else raw
        if shown != raw:
            self.raw[unit] = raw
        else:
            self.raw.pop(unit, None)
        start = unit * UNIT
        new = shown.to_bytes(UNIT, "little")
        if self._flash[start : start + UNIT] != new:
            self._flash[start : start + UNIT] = new
            self._code_changed(self.flash_base + start, self.flash_base + start + UNIT)

    def _erase(self, offset: int, size: int) -> None:
        first, last = offset // UNIT, (offset + size) // UNIT
        self._flash[offset : offset + size] = b"\xff" * size
        self.ecc[first:last] = b"\xff" * (last - first)
        for unit in [u for u in self.raw if first <= u < last]:
            del self.raw[unit]
        self._clear_faulty(first, last)
        self._code_changed(self.flash_base + offset, self.flash_base + offset + size)

    def _clear_faulty(self, first: int, last: int) -> None:
        gone = [u for u in self.faulty if first <= u < last]
        if gone:
            self.faulty.difference_update(gone)
            self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _ecc_event(self, unit: int, flag: int) -> None:
        self.regs["ECCADDR"] = self.flash_base + unit * UNIT
        self.regs["SR"] = self.regs["SR"] | flag
        self._update_irq()
