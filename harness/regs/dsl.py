"""Declare registers once: fields, reset values and access modes (SVD's vocabulary).

The same declarations drive the peripheral models at run time (`RegisterFile`), the
firmware's C header and the SVD file (`harness.regs.export`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as _slot
from enum import Enum
from typing import Any

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
class WritableWhen:
    """Write protection: a field (or a whole register) changes only while the named fields
    of `register` hold the given values (M_CAN's "protected" registers: CCCR.INIT = CCE = 1).
    Writes while it does not hold leave the field as it was; a write of which nothing could
    change is ignored with a warning naming what to set first."""

    register: str
    fields: tuple[tuple[str, int], ...]

    def hint(self) -> str:
        set_ = [f"{self.register}.{f}" for f, v in self.fields if v == 1]
        other = [f"{self.register}.{f}={v}" for f, v in self.fields if v != 1]
        return "set " + " and ".join(set_ + other)


def writable_when(register: str, **fields: int) -> WritableWhen:
    """`writable_when("CCCR", INIT=1, CCE=1)`; names are checked against the block."""
    if not fields:
        raise BoardError(f"writable_when({register!r}) names no field")
    return WritableWhen(register, tuple(fields.items()))


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    lsb: int
    width: int = 1
    access: Access = Access.RW
    reset: int = 0
    doc: str = ""
    modelled: bool = True  # documented but not modelled: accepted, and logged when written
    writable_when: WritableWhen | None = None  # None: the register's (if any)
    mask: int = _slot(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mask", ((1 << self.width) - 1) << self.lsb)

    def get(self, word: int) -> int:
        """This field's value in a register value."""
        return (word & self.mask) >> self.lsb

    def place(self, value: int) -> int:
        """`value` at this field's bits; a value that does not fit is refused."""
        if value >> self.width or value < 0:
            raise ValueError(f"field {self.name}: {value} does not fit in {self.width} bits")
        return value << self.lsb


@dataclass(frozen=True, slots=True)
class Register:
    name: str
    offset: int
    fields: tuple[Field, ...]
    doc: str = ""
    count: int = 1  # >1: an array of identical registers at offset + 4 * i (name0, name1, ...)
    writable_when: WritableWhen | None = None  # for every field without its own

    def __post_init__(self) -> None:
        used = 0
        names: set[str] = set()
        for f in self.fields:
            if f.name in names:
                raise BoardError(f"register {self.name}: field {f.name} declared twice")
            names.add(f.name)
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

    def pack(self, **values: int) -> int:
        """A register value from named fields (the others 0): an unknown field or a value
        that does not fit is refused."""
        word = 0
        for name, value in values.items():
            word |= self.field(name).place(value)
        return word

    def codec(self, *names: str) -> Codec:
        """Fields packed and unpacked together on hot paths (masks and shifts compiled once)."""
        return Codec(self, names)

    def guard_of(self, f: Field) -> WritableWhen | None:
        return f.writable_when or self.writable_when


class Codec:
    """Some fields of one register, in the order named: `unpack(word)` gives their values,
    `pack(*values)` a register value (values that do not fit are refused), and
    `replace(word, *values)` the word with just those fields replaced. Compiled from the
    declaration, so as fast as hand-written masks and shifts."""

    __slots__ = ("mask", "names", "pack", "register", "replace", "unpack")

    def __init__(self, register: Register, names: tuple[str, ...]) -> None:
        if not names or len(set(names)) != len(names):
            raise KeyError(f"register {register.name}: codec needs distinct fields, got {names}")
        fields = [register.field(n) for n in names]  # raises for a misspelled field
        self.register = register
        self.names = names
        self.mask = sum(f.mask for f in fields)
        args = ", ".join(f"v{i}" for i in range(len(fields)))
        get = ", ".join(
            (f"w >> {f.lsb} & 0x{(1 << f.width) - 1:X}" if f.lsb else f"w & 0x{f.mask:X}")
            for f in fields
        )
        fit = " or ".join(f"v{i} >> {f.width}" for i, f in enumerate(fields))
        put = " | ".join(f"v{i} << {f.lsb}" if f.lsb else f"v{i}" for i, f in enumerate(fields))
        source = (
            f"def unpack(w):\n    return ({get},)\n"
            f"def pack({args}):\n"
            f"    if {fit}:\n        raise misfit(({args},))\n"
            f"    return {put}\n"
            f"def replace(w, {args}):\n"
            f"    if {fit}:\n        raise misfit(({args},))\n"
            f"    return (w & 0x{~self.mask & 0xFFFFFFFF:X}) | {put}\n"
        )
        scope: dict[str, Any] = {"misfit": self._misfit}
        exec(source, scope)  # generated from the declaration above
        self.unpack: Callable[[int], tuple[int, ...]] = scope["unpack"]
        self.pack: Callable[..., int] = scope["pack"]
        self.replace: Callable[..., int] = scope["replace"]

    def _misfit(self, values: tuple[int, ...]) -> ValueError:
        for name, value in zip(self.names, values, strict=True):
            f = self.register.field(name)
            if value >> f.width or value < 0:
                return ValueError(f"register {self.register.name}: {name}={value} does not fit "
                                  f"in {f.width} bits")  # fmt: skip
        return ValueError(f"register {self.register.name}: {values} do not fit")


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
        names = {reg.name: reg for reg in self.registers}
        if len(names) != len(self.registers):
            raise BoardError(f"{self.name}: a register name is declared twice")
        for reg in self.registers:
            for f in reg.fields:
                guard = reg.guard_of(f)
                if guard is not None:
                    self._check_guard(reg, guard, names)

    def _check_guard(self, reg: Register, guard: WritableWhen, names: dict[str, Register]) -> None:
        where = f"{self.name}: {reg.name} writable_when"
        target = names.get(guard.register)
        if target is None:
            raise BoardError(f"{where} names no register {guard.register!r}")
        if target.count != 1:
            raise BoardError(f"{where} names the register array {guard.register}")
        for field_name, value in guard.fields:
            try:
                target.field(field_name).place(value)
            except KeyError:
                raise BoardError(f"{where}: {guard.register} has no field {field_name!r}") from None
            except ValueError as e:
                raise BoardError(f"{where}: {e}") from None

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
    # write protection: (register, its mask, the value it must have, the bits it locks, hint)
    guards: tuple[tuple[str, int, int, int, str], ...]

    @classmethod
    def of(cls, reg: Register, index: int, block: Block) -> _Masks:
        return cls(reg, index, reg.mask_of(Access.WO), reg.mask_of(Access.RC),
                   reg.mask_of(Access.RW, Access.WO), reg.mask_of(Access.W1C),
                   reg.mask_of(Access.W1S), reg.defined_mask, reg.unmodelled_mask,
                   _guards(reg, block))  # fmt: skip


def _guards(reg: Register, block: Block) -> tuple[tuple[str, int, int, int, str], ...]:
    locks: dict[WritableWhen, int] = {}
    for f in reg.fields:
        guard = reg.guard_of(f)
        if guard is not None:
            locks[guard] = locks.get(guard, 0) | f.mask
    out = []
    for guard, bits in locks.items():
        target = block.register(guard.register)
        mask = value = 0
        for field_name, v in guard.fields:
            f = target.field(field_name)
            mask |= f.mask
            value |= f.place(v)
        out.append((guard.register, mask, value, bits, guard.hint()))
    return tuple(out)


class _Hooks(dict[str, Any]):
    """Hook tables that refuse a register the block does not declare (a misspelled hook
    would otherwise never run)."""

    def __init__(self, block: Block) -> None:
        super().__init__()
        self._names = frozenset(r.name for r in block.registers)
        self._block = block.name

    def __setitem__(self, name: str, hook: Any) -> None:
        if name not in self._names:
            raise KeyError(f"{self._block} has no register {name!r} to hook")
        super().__setitem__(name, hook)


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
            reg.offset + 4 * i: _Masks.of(reg, i, block)
            for reg in block.registers
            for i in range(reg.count)
        }
        self.values: dict[str, list[int]] = {r.name: [r.reset] * r.count for r in block.registers}
        self._fields = {(r.name, f.name): f for r in block.registers for f in r.fields}
        self._registers = {r.name: r for r in block.registers}
        self.on_read: dict[str, _ReadHook] = _Hooks(block)
        self.on_write: dict[str, _WriteHook] = _Hooks(block)
        self._warned: set[tuple[str, int]] = set()

    def reset(self) -> None:
        for reg in self.block.registers:
            self.values[reg.name][:] = [reg.reset] * reg.count  # in place: values may be views

    def word_masks(self) -> dict[int, _Masks]:
        """Each register word's access masks by offset (a native model serves some words)."""
        return dict(self._by_offset)

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

    def register(self, name: str) -> Register:
        try:
            return self._registers[name]
        except KeyError:
            return self.block.register(name)  # raises the clear KeyError

    def get_field(self, reg: str, field_name: str, index: int = 0) -> int:
        f = self._field(reg, field_name)
        return (self.values[reg][index] & f.mask) >> f.lsb

    field = get_field

    def set_field(self, reg: str, field_name: str, value: int, index: int = 0) -> None:
        f = self._field(reg, field_name)
        old = self.values[reg][index]
        self.values[reg][index] = (old & ~f.mask) | ((value << f.lsb) & f.mask)

    def pack(self, reg: str, **values: int) -> int:
        """A value of register `reg` from named fields; see `Register.pack`."""
        return self.register(reg).pack(**values)

    def set_fields(self, reg: str, index: int = 0, **values: int) -> None:
        """Replace the named fields of `reg` (checked as `pack`), keeping the others."""
        r = self.register(reg)
        keep = ~sum(r.field(name).mask for name in values)
        self.values[reg][index] = (self.values[reg][index] & keep) | r.pack(**values)

    def reset_register(self, reg: str) -> None:
        r = self.register(reg)
        self.values[reg][:] = [r.reset] * r.count

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
        if entry.guards:
            locked, hints = 0, []
            for reg_name, mask, expected, bits, hint in entry.guards:
                if self.values[reg_name][0] & mask != expected:
                    locked |= bits
                    hints.append(hint)
            if locked == entry.defined:  # nothing could change: the write is ignored
                log.warning("%s: write to %s ignored: %s first", self.owner, name,
                            " and ".join(hints))  # fmt: skip
                return
            new = (new & ~locked) | (old & locked)
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
