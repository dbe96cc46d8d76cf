"""Firmware files → FirmwareImage: an ELF (segments, symbols and the vector table, with
pyelftools), or an Intel HEX, Motorola S-record or raw binary image (segments only, with
bincopy), as flashing tools take them."""

from __future__ import annotations

import bisect
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import bincopy  # type: ignore[import-untyped]
from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import ARMAttributesSection, SymbolTableSection

from harness.errors import FirmwareLoadError

EM_ARM = 40
VECTOR_TABLE_NAMES = (".isr_vector", ".vectors", ".vector_table")
HEX_SUFFIXES = (".hex", ".ihex", ".ihx")
SREC_SUFFIXES = (".s19", ".s28", ".s37", ".srec", ".mot")
# ARM EABI build attributes (addenda to the AAPCS): what the code expects of the FPU.
FP_ARCH_NAMES = {1: "VFPv1", 2: "VFPv2", 3: "VFPv3", 4: "VFPv3-D16", 5: "VFPv4", 6: "VFPv4-D16",
                 7: "FP for ARMv8", 8: "FP for ARMv8-D16"}  # fmt: skip
VFP_ARGS_IN_REGISTERS = 1  # Tag_ABI_VFP_args: FP arguments in VFP registers (hard float)


@dataclass(frozen=True, slots=True)
class Segment:
    address: int  # load (physical) address: where the bytes live at reset
    data: bytes
    mem_size: int  # bytes the segment occupies; the rest after `data` is zero-filled


@dataclass(frozen=True, slots=True)
class Symbol:
    name: str
    address: int
    size: int
    kind: str  # "object" or "function"


@dataclass(frozen=True, slots=True)
class FirmwareImage:
    path: Path
    entry: int
    segments: tuple[Segment, ...]
    symbols: dict[str, Symbol] = field(hash=False)
    vector_table: int  # address of the vector table (its first word is the initial SP)
    # What the ELF's build attributes say it needs of an FPU ("" for none): e.g.
    # "Tag_FP_arch VFPv4-D16, Tag_ABI_VFP_args VFP registers".
    fpu_requirement: str = ""
    _functions: tuple[tuple[int, int, str], ...] = field(default=(), hash=False, repr=False)

    def symbol(self, name: str) -> Symbol:
        try:
            return self.symbols[name]
        except KeyError:
            raise KeyError(f"{self.path.name}: no symbol named {name!r}") from None

    def function_at(self, address: int) -> str | None:
        """Name of the function containing `address` (Thumb bit ignored), if any."""
        address &= ~1
        starts = [f[0] for f in self._functions]
        i = bisect.bisect_right(starts, address) - 1
        if i >= 0:
            start, size, name = self._functions[i]
            if start <= address < start + max(size, 2):
                return name
        return None


_cache: dict[tuple[Path, bytes], FirmwareImage] = {}
_CACHE_SIZE = 16  # a test session loads a handful of images many times


def load_elf(path: str | Path) -> FirmwareImage:
    """Read an ELF for a 32-bit little-endian ARM core; errors name the file and the problem.

    Parsed images are cached by content, so many machines from one ELF parse it once.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise FirmwareLoadError(f"{path}: cannot read firmware: {err.strerror}") from err
    if raw[:4] != b"\x7fELF":
        raise FirmwareLoadError(f"{path}: not an ELF file (starts with {raw[:4]!r})")
    key = (path.resolve(), hashlib.sha256(raw).digest())
    image = _cache.pop(key, None)
    if image is None:
        try:
            image = _parse(path, raw)
        except ELFError as err:
            raise FirmwareLoadError(f"{path}: malformed ELF: {err}") from err
        if len(_cache) >= _CACHE_SIZE:
            del _cache[next(iter(_cache))]  # least recently used
    _cache[key] = image
    return image


def _parse(path: Path, raw: bytes) -> FirmwareImage:
    elf = ELFFile(io.BytesIO(raw))
    if elf.elfclass != 32 or not elf.little_endian:
        raise FirmwareLoadError(
            f"{path}: ELF is {elf.elfclass}-bit {'little' if elf.little_endian else 'big'}-endian;"
            " expected 32-bit little-endian ARM (Cortex-M)"
        )
    if elf["e_machine"] != "EM_ARM":
        raise FirmwareLoadError(
            f"{path}: ELF machine is {elf['e_machine']}; expected EM_ARM (Cortex-M)"
        )
    segments = []
    for seg in elf.iter_segments():
        if seg["p_type"] != "PT_LOAD" or seg["p_memsz"] == 0:
            continue
        data = seg.data()
        if len(data) != seg["p_filesz"]:
            raise FirmwareLoadError(
                f"{path}: segment at 0x{seg['p_paddr']:08X} is truncated "
                f"({len(data)} of {seg['p_filesz']} bytes)"
            )
        # p_paddr, not p_vaddr: .data's initial values live in flash; startup copies them.
        segments.append(Segment(seg["p_paddr"], data, seg["p_memsz"]))
    if not segments:
        raise FirmwareLoadError(f"{path}: ELF has no loadable segments")

    symbols: dict[str, Symbol] = {}
    functions: list[tuple[int, bool, int, str]] = []
    symtab = elf.get_section_by_name(".symtab")
    if isinstance(symtab, SymbolTableSection):
        for sym in symtab.iter_symbols():
            kind = sym["st_info"]["type"]
            if not sym.name or kind not in ("STT_OBJECT", "STT_FUNC"):
                continue
            address = sym["st_value"] & ~1 if kind == "STT_FUNC" else sym["st_value"]
            is_function = kind == "STT_FUNC"
            item = Symbol(
                sym.name, address, sym["st_size"], "function" if is_function else "object"
            )
            symbols.setdefault(sym.name, item)
            if is_function:
                weak = sym["st_info"]["bind"] == "STB_WEAK"
                functions.append((address, weak, sym["st_size"], sym.name))
    # One name per address: a strong symbol over the weak aliases that share it.
    by_address = {
        addr: (addr, size, name) for addr, _weak, size, name in sorted(functions, reverse=True)
    }

    vector_table = _vector_table_address(elf, segments)
    return FirmwareImage(
        path=path,
        entry=elf["e_entry"],
        segments=tuple(segments),
        symbols=symbols,
        vector_table=vector_table,
        fpu_requirement=_fpu_requirement(elf),
        _functions=tuple(sorted(by_address.values())),
    )


def _vector_table_address(elf: ELFFile, segments: list[Segment]) -> int:
    for name in VECTOR_TABLE_NAMES:
        section = elf.get_section_by_name(name)
        if section is not None and section["sh_size"] >= 8:
            return int(section["sh_addr"])
    return min(s.address for s in segments if s.data)


def _fpu_requirement(elf: ELFFile) -> str:
    """The FP build attributes that need an FPU to run, as readable text ("" for none)."""
    section = elf.get_section_by_name(".ARM.attributes")
    if not isinstance(section, ARMAttributesSection):
        return ""
    needs = []
    for sub in section.iter_subsections():
        for subsub in sub.iter_subsubsections():
            for attr in subsub.iter_attributes():
                if attr.tag == "TAG_FP_ARCH" and attr.value:
                    needs.append(f"Tag_FP_arch {FP_ARCH_NAMES.get(attr.value, attr.value)}")
                elif attr.tag == "TAG_ABI_VFP_ARGS" and attr.value == VFP_ARGS_IN_REGISTERS:
                    needs.append("Tag_ABI_VFP_args VFP registers")
    return ", ".join(needs)


def load_image(path: str | Path, address: int | None = None) -> FirmwareImage:
    """Any firmware file: an ELF; Intel HEX (.hex) or S-record (.s19, .srec, ...) with their
    own addresses; a raw binary (.bin) placed at `address`. Images other than ELF have no
    symbols; their vector table is taken to be at their lowest address."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (*HEX_SUFFIXES, *SREC_SUFFIXES, ".bin"):
        if address is not None:
            raise FirmwareLoadError(f"{path}: an address is for a raw binary (.bin), not an ELF")
        return load_elf(path)
    if suffix == ".bin" and address is None:
        raise FirmwareLoadError(f"{path}: a raw binary needs the address to place it at")
    if suffix != ".bin" and address is not None:
        raise FirmwareLoadError(f"{path}: a HEX or S-record file carries its own addresses")
    try:
        text = path.read_bytes()
    except OSError as err:
        raise FirmwareLoadError(f"{path}: cannot read firmware: {err.strerror}") from err
    binary = bincopy.BinFile()
    try:
        if suffix in HEX_SUFFIXES:
            binary.add_ihex(text.decode("ascii"))
        elif suffix in SREC_SUFFIXES:
            binary.add_srec(text.decode("ascii"))
        else:
            binary.add_binary(text, address=address)
    except (bincopy.Error, UnicodeDecodeError, ValueError) as err:
        raise FirmwareLoadError(f"{path}: not a valid {suffix[1:].upper()} file: {err}") from None
    segments = tuple(Segment(seg.minimum_address, bytes(seg.data), len(seg.data))
                     for seg in binary.segments)  # fmt: skip
    if not segments:
        raise FirmwareLoadError(f"{path}: no data")
    lowest = min(seg.address for seg in segments)
    return FirmwareImage(path=path, entry=lowest, segments=segments, symbols={},
                         vector_table=lowest)  # fmt: skip
