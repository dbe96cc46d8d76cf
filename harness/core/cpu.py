"""The Cortex-M core under Unicorn: memory, MMIO dispatch, the native hot path, faults.

Memory regions are host buffers mapped with `mem_map_ptr`, so the harness reads and writes
them (vector fetches, snapshots, image loads) without a Unicorn call. Peripheral pages are
mapped with `mmio_map`; each access is dispatched to the register block that owns it.
"""

from __future__ import annotations

import ctypes
import logging
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from unicorn import (
    UC_ARCH_ARM,
    UC_ERR_EXCEPTION,
    UC_ERR_OK,
    UC_HOOK_CODE,
    UC_HOOK_MEM_INVALID,
    UC_HOOK_MEM_READ,
    UC_MEM_FETCH_PROT,
    UC_MEM_FETCH_UNMAPPED,
    UC_MEM_READ_PROT,
    UC_MEM_READ_UNMAPPED,
    UC_MEM_WRITE_PROT,
    UC_MEM_WRITE_UNMAPPED,
    UC_MODE_MCLASS,
    UC_MODE_THUMB,
    UC_PROT_ALL,
    UC_PROT_EXEC,
    UC_PROT_READ,
    Uc,
    UcError,
)
from unicorn import arm_const as arm
from unicorn.unicorn_py3.unicorn import MMIO_READ_CFUNC, MMIO_WRITE_CFUNC, uclib

from harness.board import Board, Region
from harness.core import native
from harness.peripherals.base import Peripheral

log = logging.getLogger(__name__)

PAGE = 0x1000


@runtime_checkable
class NativeMmio(Protocol):
    """A peripheral that serves some of its registers in C (see `MmioPage`)."""

    base: int
    size: int
    stop_core: Callable[[BaseException], None] | None

    def native_mmio(self) -> tuple[int, int, int]:
        """(read function, write function, state) addresses, as native.c's mmio_page takes."""

    def model_read(self, offset: int, size: int) -> int:
        """A read the native side declined (the page's Python fallback)."""

    def model_write(self, offset: int, size: int, value: int) -> None:
        """A write the native side declined (the page's Python fallback)."""


class MmioPage(ctypes.Structure):
    """Mirror of `mmio_page` in native.c."""

    _fields_ = [
        ("read", ctypes.c_void_p * (PAGE // 4)),
        ("write", ctypes.c_void_p * (PAGE // 4)),
        ("state", ctypes.c_void_p * (PAGE // 4)),
        ("start", ctypes.c_uint32 * (PAGE // 4)),
        ("py_read", ctypes.c_void_p),
        ("py_write", ctypes.c_void_p),
    ]


_WORD = struct.Struct("<I")

ACCESS_NAMES = {
    UC_MEM_READ_UNMAPPED: "unmapped read",
    UC_MEM_WRITE_UNMAPPED: "unmapped write",
    UC_MEM_FETCH_UNMAPPED: "instruction fetch from unmapped memory",
    UC_MEM_WRITE_PROT: "write to read-only memory",
    UC_MEM_READ_PROT: "read of unreadable memory",
    UC_MEM_FETCH_PROT: "instruction fetch from non-executable memory",
}


FETCH_ACCESSES = (UC_MEM_FETCH_UNMAPPED, UC_MEM_FETCH_PROT)


@dataclass(slots=True)
class MemoryFault:
    kind: str
    address: int
    pc: int | None  # None: the core's PC after the stop (the access was abandoned there)
    fetch: bool = False  # an instruction fetch, not a data access
    protection: bool = False  # mapped, but not for this access
    imprecise: bool = False  # reported after the access completed (at a later PC)
    exact_pc: bool = False  # `pc` came from a hook on the access: exact by construction


# on_access(address, size, fetch) -> True to stop the core before that access
WatchCallback = Callable[[int, int, bool], bool]

class HostMemory:
    """One region's bytes, shared between Python and the emulated core."""

    def __init__(self, region: Region) -> None:
        self.region = region
        self.data = bytearray(region.size)
        self._ctype = (ctypes.c_char * region.size).from_buffer(self.data)
        self.address = ctypes.addressof(self._ctype)


class Cpu:
    def __init__(self, board: Board) -> None:
        self.board = board
        self.uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        # Never UC_TLB_VIRTUAL: in Unicorn 2.1.4 it skips instructions after IT blocks
        # (tests/test_cpu_shapes.py; the shared notes).
        self.memory: list[HostMemory] = []
        for region in board.regions:
            mem = HostMemory(region)
            perms = UC_PROT_READ | UC_PROT_EXEC if region.kind == "flash" else UC_PROT_ALL
            self.uc.mem_map_ptr(region.base, region.size, perms, mem.address)
            self.memory.append(mem)
        self.lib = native.library()
        self.ctx = native.new_context()
        self.ctx.n_code = len(self.memory)
        self.ctx.fpu = int(board.fpu)
        for i, mem in enumerate(self.memory):
            self.ctx.code_is_flash[i] = int(mem.region.kind == "flash")
            self.ctx.code_base[i] = mem.region.base
            self.ctx.code_size[i] = mem.region.size
            self.ctx.code_host[i] = mem.address
        self.uch = self.uc._uch
        self.ctxp = ctypes.byref(self.ctx)
        if self.lib.harness_install(self.uch, self.ctxp) != 0:
            raise RuntimeError("could not install the native hooks")
        self.memory_fault: MemoryFault | None = None
        self._mmio_callbacks: list[tuple[object, object]] = []
        self.imprecise_bus_errors = False
        self._watch_hooks: list[int] = []
        self._on_watch: WatchCallback | None = None
        self.watched_pc = 0  # the PC of the instruction the last watch hook saw
        self.uc.hook_add(UC_HOOK_MEM_INVALID, self._invalid_access)

    # ---- memory ----

    def memories(self, kind: str) -> list[HostMemory]:
        return [m for m in self.memory if m.region.kind == kind]

    def host_memory(self, address: int, length: int = 1) -> tuple[HostMemory, int] | None:
        for mem in self.memory:
            if mem.region.contains(address, length):
                return mem, address - mem.region.base
        return None

    def read_word(self, address: int) -> int | None:
        for mem in self.memory:
            off = address - mem.region.base
            if 0 <= off <= mem.region.size - 4:
                return int(_WORD.unpack_from(mem.data, off)[0])
        return None

    def map_peripherals(self, peripherals: list[Peripheral]) -> None:
        pages: dict[int, list[Peripheral]] = {}
        for p in peripherals:
            for page in range(p.base & ~(PAGE - 1), p.base + p.size, PAGE):
                pages.setdefault(page, []).append(p)
        for page, owners in sorted(pages.items()):
            # Smallest first, so a block nested in another (SysTick inside the SCS) wins.
            owners.sort(key=lambda p: p.size)
            self._map_page(page, owners)

    def _bus_error(self, access: str, address: int) -> None:
        """An access inside a peripheral page that no register block claims: on hardware a
        bus fault. Recorded like an unmapped access; `run` then raises.

        Inside an MMIO callback Unicorn's PC is the start of the block holding the access,
        and an emu_stop there would run the block again from its start. So with
        `imprecise_bus_errors` (the firmware takes its faults) the access completes (a read
        gives 0) and the core stops at the next block: an imprecise bus fault, which the
        architecture allows. Without it the run ends here, reporting the block's PC."""
        kind = f"bus error ({access} of unassigned peripheral address)"
        if self.imprecise_bus_errors:
            self.memory_fault = MemoryFault(kind, address, None, imprecise=True)
            self.ctx.stop_request = 1
            return
        pc = int(self.uc.reg_read(arm.UC_ARM_REG_PC))
        self.memory_fault = MemoryFault(kind, address, pc)
        self.stop_now()  # blocks entered before the stop lands are not counted

    def _map_page(self, page: int, owners: list[Peripheral]) -> None:
        """Map one peripheral page with callbacks that go straight to the owning block.

        Registered with `uc_mmio_map` directly rather than `Uc.mmio_map`, whose two extra
        Python frames per access cost more than the register model itself. Like the
        binding, an exception in a callback is kept for `run` to re-raise and stops the core.
        """
        words = PAGE // 4
        readers: list[Callable[[int, int], int] | None] = [None] * words
        writers: list[Callable[[int, int, int], None] | None] = [None] * words
        starts = [0] * words
        for p in reversed(owners):  # largest first: a nested block overrides its parent
            first = (p.base - page) // 4
            lo, hi = max(first, 0), min(first + p.size // 4, words)
            # a native owner's C side has declined what reaches Python: straight to its model
            reader, writer = ((p.model_read, p.model_write) if isinstance(p, NativeMmio)
                              else (p.read, p.write))  # fmt: skip
            readers[lo:hi], writers[lo:hi] = [reader] * (hi - lo), [writer] * (hi - lo)
            starts[lo:hi] = [p.base - page] * (hi - lo)
        uc = self.uc

        def failed(err: BaseException) -> None:
            if uc._hook_exception is None:
                uc._hook_exception = err
            self.ctx.stop_reasons |= native.STOP_REQUEST  # for Python to raise it
            uc.emu_stop()

        def read(_uc: object, offset: int, size: int, _ud: object) -> int:
            try:
                reader = readers[offset >> 2]
                if reader is None:
                    self._bus_error("read", page + offset)
                    return 0
                return reader(offset - starts[offset >> 2], size)
            except BaseException as err:  # re-raised by run()
                failed(err)
                return 0

        def write(_uc: object, offset: int, size: int, value: int, _ud: object) -> None:
            try:
                writer = writers[offset >> 2]
                if writer is None:
                    self._bus_error("write", page + offset)
                    return
                writer(offset - starts[offset >> 2], size, value)
            except BaseException as err:  # re-raised by run()
                failed(err)

        callbacks = (MMIO_READ_CFUNC(read), MMIO_WRITE_CFUNC(write))
        self._mmio_callbacks.append(callbacks)  # ctypes callbacks must outlive the mapping
        native_owners = [p for p in owners if isinstance(p, NativeMmio)]
        if not native_owners:
            status = uclib.uc_mmio_map(self.uch, page, PAGE, callbacks[0], None, callbacks[1],
                                       None)  # fmt: skip
        else:
            table = self._native_page(page, native_owners, callbacks)
            for p in native_owners:
                p.stop_core = failed
            read_fn, write_fn = (ctypes.cast(f, ctypes.c_void_p) for f in
                                 (self.lib.harness_page_read, self.lib.harness_page_write))
            status = uclib.uc_mmio_map(self.uch, page, PAGE, read_fn, ctypes.byref(table),
                                       write_fn, ctypes.byref(table))  # fmt: skip
        if status != UC_ERR_OK:
            raise UcError(status)

    def _native_page(self, page: int, owners: Sequence[NativeMmio],
                     callbacks: tuple[Any, Any]) -> MmioPage:  # fmt: skip
        """The C dispatch table of a page whose owners serve some registers natively; the
        page's Python callbacks take every access they decline."""
        table = MmioPage()
        assert ctypes.sizeof(table) == self.lib.harness_sizeof_page(), "MmioPage != native.c"
        for p in owners:
            read_fn, write_fn, state = p.native_mmio()
            first = (p.base - page) // 4
            for w in range(max(first, 0), min(first + p.size // 4, PAGE // 4)):
                table.read[w], table.write[w] = read_fn, write_fn
                table.state[w], table.start[w] = state, p.base - page
        table.py_read = ctypes.cast(callbacks[0], ctypes.c_void_p).value
        table.py_write = ctypes.cast(callbacks[1], ctypes.c_void_p).value
        self._mmio_callbacks.append((table, owners))  # the table must outlive the mapping
        return table

    # ---- watched memory ----

    def watch(self, ranges: Sequence[tuple[int, int]], on_access: WatchCallback) -> None:
        """Before any data read or instruction fetch in `ranges` ([start, end) pairs; they
        replace the previous ones), call `on_access(address, size, fetch)`; if it returns
        True the core stops before that instruction runs (precisely: an emu_stop in a
        memory or code hook abandons the instruction). For rare ranges only: while any is
        watched, every load takes Unicorn's slow path."""
        uc = self.uc
        for handle in self._watch_hooks:
            uc.hook_del(handle)
        self._watch_hooks = []
        self._on_watch = on_access
        for begin, end in ranges:
            self._watch_hooks.append(uc.hook_add(UC_HOOK_MEM_READ, self._watched_read,
                                                 begin=begin, end=end - 1))  # fmt: skip
            self._watch_hooks.append(uc.hook_add(UC_HOOK_CODE, self._watched_fetch,
                                                 begin=begin, end=end - 1))  # fmt: skip
            uc.ctl_remove_cache(begin, end)  # translated code carries its code hooks

    def _watched_read(self, uc: Uc, _access: int, address: int, size: int, _value: int,
                      _ud: object) -> None:  # fmt: skip
        # A read hook sees the PC of the reading instruction (Unicorn syncs it for hooks).
        self.watched_pc = int(uc.reg_read(arm.UC_ARM_REG_PC))
        self._watched(address, size, False)

    def _watched_fetch(self, _uc: Uc, address: int, size: int, _ud: object) -> None:
        self.watched_pc = address
        self._watched(address, size, True)

    def _watched(self, address: int, size: int, fetch: bool) -> None:
        ctx = self.ctx
        if ctx.stopping or self._on_watch is None:
            return
        try:
            stop = self._on_watch(address, size, fetch)
        except BaseException as err:  # re-raised by run()
            if self.uc._hook_exception is None:
                self.uc._hook_exception = err
            stop = True
        if stop:
            self.stop_now()

    # ---- registers ----

    def reg(self, name: str) -> int:
        return int(self.uc.reg_read(getattr(arm, f"UC_ARM_REG_{name.upper()}")))

    def set_reg(self, name: str, value: int) -> None:
        self.uc.reg_write(getattr(arm, f"UC_ARM_REG_{name.upper()}"), value)

    @property
    def pc(self) -> int:
        return int(self.lib.harness_resume_pc(self.uch, self.ctxp)) & ~1

    def reset_core(self, sp: int, pc: int) -> None:
        uc = self.uc
        uc.reg_write(arm.UC_ARM_REG_CONTROL, 0)
        uc.reg_write(arm.UC_ARM_REG_IPSR, 0)  # thread mode; with SPSEL=0 the MSP is active
        for n in range(13):
            uc.reg_write(arm.UC_ARM_REG_R0 + n, 0)
        for reg in ("PRIMASK", "BASEPRI", "FAULTMASK"):
            self.set_reg(reg, 0)
        uc.reg_write(arm.UC_ARM_REG_PSP, 0)
        uc.reg_write(arm.UC_ARM_REG_MSP, sp & ~3)
        uc.reg_write(arm.UC_ARM_REG_LR, 0xFFFFFFFF)
        uc.reg_write(arm.UC_ARM_REG_XPSR, 1 << 24)
        uc.reg_write(arm.UC_ARM_REG_PC, pc | 1)
        ctx = self.ctx
        ctx.active_depth = ctx.returned_count = ctx.stop_on_return = ctx.watch_masks = 0

    # ---- execution ----

    def run(self) -> None:
        """Run from the current PC until a native stop, a WFI, a trap or a fault.

        One native call instead of `Uc.emu_start` (a microsecond per wake-up); it keeps the
        binding's contract (unicorn==2.1.4 is pinned): errors raise UcError, and an
        exception raised in a Python hook (an MMIO callback) is re-raised here.
        """
        self.uc._hook_exception = None
        self.memory_fault = None
        self.raise_run_errors(self.lib.harness_run(self.uch, self.ctxp))

    def raise_run_errors(self, status: int) -> None:
        uc = self.uc
        if uc._hook_exception is not None:
            raise uc._hook_exception
        if status:
            raise UcError(status)
        if self.memory_fault is not None:
            raise UcError(UC_ERR_EXCEPTION)  # a bus error or ECC error seen by a hook

    def advance(self, target: int) -> int:
        """The native run loop (with the native NVIC and SysTick): run towards cycle
        `target` until something needs Python; returns native.ADV_*. After ADV_STOP,
        `raise_run_errors(ctx.run_error)` then the machine's usual handling of the stop."""
        self.uc._hook_exception = None
        self.memory_fault = None
        return int(self.lib.harness_advance(self.uch, self.ctxp, target))

    def stop_now(self) -> None:
        """Stop a running core from a Python hook, before anything else runs; the native
        loop hands the stop to Python."""
        ctx = self.ctx
        ctx.stopping = 1
        ctx.stop_reasons |= native.STOP_REQUEST
        self.uc.emu_stop()

    def enter_exception(self, exc: int, handler: int) -> bool:
        return bool(self.lib.harness_exc_entry(self.uch, self.ctxp, exc, handler) == 0)

    def sample_masks(self, watch: bool) -> tuple[int, int, int]:
        """PRIMASK, BASEPRI, FAULTMASK now; with `watch`, stop the run when any changes."""
        ctx = self.ctx
        self.lib.harness_watch_masks(self.uch, self.ctxp, int(watch))
        return ctx.watched_primask, ctx.watched_basepri, ctx.watched_faultmask

    def flush_code_cache(self) -> None:
        self.uc.ctl_flush_tb()
        self.ctx.code_generation += 1  # and the native helper's decoded blocks

    def code_changed(self, begin: int, end: int) -> None:
        """Code in [begin, end) was rewritten from outside the core: translate it again."""
        self.uc.ctl_remove_cache(begin, end)
        self.ctx.code_generation += 1

    def _invalid_access(
        self, uc: Uc, access: int, address: int, size: int, value: int, _ud: object
    ) -> bool:
        pc = int(uc.reg_read(arm.UC_ARM_REG_PC))
        kind = ACCESS_NAMES.get(access, f"invalid memory access ({access})")
        protection = access in (UC_MEM_WRITE_PROT, UC_MEM_READ_PROT, UC_MEM_FETCH_PROT)
        self.memory_fault = MemoryFault(kind, address, pc, access in FETCH_ACCESSES, protection)
        return False
