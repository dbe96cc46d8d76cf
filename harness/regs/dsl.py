"""Declare registers once: fields, reset values and access modes (SVD's vocabulary).

The same declarations drive the peripheral models at run time (`RegisterFile`), the
firmware's C header and the SVD file (`harness.regs.export`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from harness.errors import BoardError

log = logging.getLogger(__name__)


class Access(Enum):
    RW = "read-write"
    RO = "read-only"
    WO = "write-only"
    W1C = "write-1-to-clear"  # SVD: read-write + modifiedWriteValues=oneToClear
    W1S = "write-1-to-set"  # SVD: read-write + modifiedWriteValues=oneToSet
    RC = "read-to-clear"  # SVD: read-only + readAction=clear


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    lsb: int
    width: int = 1
    access: Access = Access.RW
    reset: int = 0
    doc: str = ""
    modelled: bool = True  # documented but not modelled: accepted, and logged when written

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb


@dataclass(frozen=True, slots=True)
class Register:
    name: str
    offset: int
    fields: tuple[Field, ...]
    doc: str = ""
    count: int = 1  # >1: an array of identical registers at offset + 4 * i (name0, name1, ...)

    def __post_init__(self) -> None:
        used = 0
        for f in self.fields:
            if f.lsb < 0 or f.lsb + f.width > 32:
                raise BoardError(f"register {self.name}: field {f.name} outside bits 0..31")
            if used & f.mask:
                raise BoardError(f"register {self.name}: field {f.name} overlaps another field")
            if f.reset >> f.width:
                raise BoardError(f"register {self.name}: reset of {f.name} exceeds its width")
            used |= f.mask

    @property
    def reset(self) -> int:
        return sum(f.reset << f.lsb for f in self.fields)

    def mask_of(self, *access: Access) -> int:
        return sum(f.mask for f in self.fields if f.access in access)

    @property
    def defined_mask(self) -> int:
        return sum(f.mask for f in self.fields)

    @property
    def unmodelled_mask(self) -> int:
        return sum(f.mask for f in self.fields if not f.modelled)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"register {self.name} has no field {name!r}")


def word(name: str, offset: int, access: Access = Access.RW, reset: int = 0, doc: str = "",
         count: int = 1) -> Register:  # fmt: skip
    """A register that is one 32-bit field of the same name."""
    return Register(name, offset, (Field(name, 0, 32, access, reset),), doc, count)


@dataclass(frozen=True, slots=True)
class Block:
    """A peripheral's register layout (what an SVD `<peripheral>` describes, minus its base)."""

    name: str
    size: int
    registers: tuple[Register, ...]
    doc: str = ""

    def __post_init__(self) -> None:
        seen: dict[int, str] = {}
        for reg in self.registers:
            for i in range(reg.count):
                off = reg.offset + 4 * i
                if off in seen:
                    raise BoardError(f"{self.name}: {reg.name} overlaps {seen[off]} at +0x{off:X}")
                if off + 4 > self.size:
                    raise BoardError(f"{self.name}: {reg.name} lies outside the block")
                seen[off] = reg.name

    def register(self, name: str) -> Register:
        for reg in self.registers:
            if reg.name == name:
                return reg
        raise KeyError(f"{self.name} has no register {name!r}")


@dataclass(frozen=True, slots=True)
class _Masks:
    """A register's access masks, computed once: MMIO accesses are on the hot path."""

    register: Register
    index: int
    write_only: int
    read_clear: int
    replace: int  # read-write and write-only bits
    one_to_clear: int
    one_to_set: int
    defined: int
    unmodelled: int

    @classmethod
    def of(cls, reg: Register, index: int) -> _Masks:
        return cls(reg, index, reg.mask_of(Access.WO), reg.mask_of(Access.RC),
                   reg.mask_of(Access.RW, Access.WO), reg.mask_of(Access.W1C),
                   reg.mask_of(Access.W1S), reg.defined_mask, reg.unmodelled_mask)  # fmt: skip


_ReadHook = Callable[[int], int]
_WriteHook = Callable[[int, int, int], None]


class RegisterFile:
    """Run-time values of one block's registers, with access semantics applied.

    Peripheral logic hooks in per register: `on_read[name]` supplies a live value (e.g. a
    counter computed from virtual time) and `on_write[name]` reacts after a write with
    (index, written, new): the bits the access wrote and the register's resulting value.
    Sub-word accesses touch only their byte lanes.
    """

    def __init__(self, block: Block, owner: str) -> None:
        self.block = block
        self.owner = owner
        self._by_offset = {
            reg.offset + 4 * i: _Masks.of(reg, i)
            for reg in block.registers
            for i in range(reg.count)
        }
        self.values: dict[str, list[int]] = {r.name: [r.reset] * r.count for r in block.registers}
        self._fields = {(r.name, f.name): f for r in block.registers for f in r.fields}
        self.on_read: dict[str, _ReadHook] = {}
        self.on_write: dict[str, _WriteHook] = {}
        self._warned: set[tuple[str, int]] = set()

    def reset(self) -> None:
        for reg in self.block.registers:
            self.values[reg.name] = [reg.reset] * reg.count

    def register_at(self, offset: int) -> Register | None:
        entry = self._by_offset.get(offset & ~3)
        return entry.register if entry else None

    def __getitem__(self, name: str) -> int:
        return self.values[name][0]

    def __setitem__(self, name: str, value: int) -> None:
        self.values[name][0] = value & 0xFFFFFFFF

    def _field(self, reg: str, field_name: str) -> Field:
        try:
            return self._fields[reg, field_name]
        except KeyError:
            self.block.register(reg).field(field_name)  # raises the clear KeyError
            raise

    def get_field(self, reg: str, field_name: str, index: int = 0) -> int:
        f = self._field(reg, field_name)
        return (self.values[reg][index] & f.mask) >> f.lsb

    def set_field(self, reg: str, field_name: str, value: int, index: int = 0) -> None:
        f = self._field(reg, field_name)
        old = self.values[reg][index]
        self.values[reg][index] = (old & ~f.mask) | ((value << f.lsb) & f.mask)

    def read(self, offset: int, size: int = 4) -> int:
        word_offset = offset & ~3
        entry = self._by_offset.get(word_offset)
        if entry is None:
            self._log_once(f"read of unimplemented offset +0x{word_offset:X}", word_offset)
            return 0
        name, i = entry.register.name, entry.index
        hook = self.on_read.get(name)
        value = hook(i) if hook else self.values[name][i]
        clear = entry.read_clear & _lane_mask(offset, size)
        if clear:
            self.values[name][i] &= ~clear
        return ((value & ~entry.write_only) >> (8 * (offset & 3))) & _size_mask(size)

    def write(self, offset: int, value: int, size: int = 4) -> None:
        word_offset = offset & ~3
        entry = self._by_offset.get(word_offset)
        if entry is None:
            self._log_once(f"write of unimplemented offset +0x{word_offset:X}", word_offset)
            return
        name, i = entry.register.name, entry.index
        lanes = _lane_mask(offset, size)
        value = (value << (8 * (offset & 3))) & lanes
        old = self.values[name][i]
        replace = entry.replace & lanes
        new = (((old & ~replace) | (value & replace)) & ~(entry.one_to_clear & value)) | (
            entry.one_to_set & value
        )
        stray = value & ~entry.defined
        if stray:
            self._log_once(f"{name}: write sets reserved bits 0x{stray:08X}", word_offset)
        touched = (new ^ old) & entry.unmodelled
        if touched:
            self._log_once(f"{name}: bits 0x{touched:08X} are documented but not modelled",
                           word_offset)  # fmt: skip
        self.values[name][i] = new
        hook = self.on_write.get(name)
        if hook:
            hook(i, value, new)

    def _log_once(self, message: str, offset: int) -> None:
        key = (message, offset)
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s: %s", self.owner, message)


def _size_mask(size: int) -> int:
    return (1 << (8 * size)) - 1


def _lane_mask(offset: int, size: int) -> int:
    return _size_mask(size) << (8 * (offset & 3))
