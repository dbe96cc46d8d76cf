"""Machine: one emulated MCU (core, memory, peripherals, virtual clock) and its test API."""

from __future__ import annotations

import ctypes
import logging
import random
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from unicorn import UC_ERR_EXCEPTION, UC_ERR_INSN_INVALID, UcError
from unicorn.unicorn import UcContext

from harness import nativelib
from harness.board import DWT_BASE, SCS_BASE, SYSTICK_BASE, Board
from harness.boards import DEFAULT_BOARD
from harness.clock import VirtualClock
from harness.core import faults as arch
from harness.core import native
from harness.core.cpu import Cpu, MemoryFault
from harness.core.dwt import Dwt
from harness.core.faults import Fault
from harness.core.fpu import CPACR_BASE, FPU_BASE, Cpacr, FpuRegisters
from harness.core.nvic import (
    BUSFAULT,
    FIRST_IRQ,
    HARDFAULT,
    MEMMANAGE,
    SVCALL,
    SYSTICK,
    USAGEFAULT,
    Nvic,
)
from harness.core.scs_native import NativeNvic, NativeScs, NativeSysTick
from harness.core.semihosting import SEMIHOSTING_BKPT, Semihosting, UnsupportedCall
from harness.core.systick import SysTick
from harness.errors import FirmwareFault, FirmwareLoadError, SimulationError, VirtualTimeout
from harness.loader import FirmwareImage, load_image
from harness.peripherals.base import Peripheral
from harness.peripherals.flash import EccError, FlashController
from harness.peripherals.gpio import Gpio
from harness.peripherals.registry import KINDS, BuildContext
from harness.peripherals.sysctl import SysCtl
from harness.peripherals.usart import Usart

log = logging.getLogger(__name__)

NS_PER_S = 1_000_000_000

# Unicorn interrupt numbers (QEMU's EXCP_*) that end a run as a fault, as ARMv7-M reports them.
TRAP_FAULTS = {
    1: Fault("undefined instruction", USAGEFAULT, arch.UNDEFINSTR),
    4: Fault("data access fault (bus fault)", BUSFAULT, arch.PRECISERR),
    7: Fault("breakpoint (BKPT)", HARDFAULT, hfsr=arch.DEBUGEVT),  # no debugger attached
    17: Fault("coprocessor instruction (no FPU on this core)", USAGEFAULT, arch.NOCP),
    18: Fault("invalid state (Thumb bit clear)", USAGEFAULT, arch.INVSTATE),
    19: Fault("stack limit overflow", BUSFAULT, arch.STKERR),
    22: Fault("unaligned access", USAGEFAULT, arch.UNALIGNED),
    23: Fault("integer divide by zero", USAGEFAULT, arch.DIVBYZERO),
}
UC_ERROR_FAULTS = {
    UC_ERR_INSN_INVALID: Fault("undefined instruction", USAGEFAULT, arch.UNDEFINSTR),
    UC_ERR_EXCEPTION: Fault("unhandled CPU exception", HARDFAULT),
}
FAULT_MODES = ("stop", "firmware")
SYSTEM_EXCEPTIONS = {2: "NMI", 3: "HardFault", 4: "MemManage", 5: "BusFault", 6: "UsageFault",
                     11: "SVCall", 12: "DebugMon", 14: "PendSV", 15: "SysTick"}  # fmt: skip
SVC_TRAP = 2
BKPT_TRAP = 7
PREFETCH_ABORT_TRAP = 3
NATIVE_FAULTS = {
    native.FAULT_BAD_EXC_RETURN: Fault("bad exception return", USAGEFAULT, arch.INVPC),
    native.FAULT_UNSTACKING: Fault("stack fault on exception return (unstacking)", BUSFAULT,
                                   arch.UNSTKERR),
    native.FAULT_STACKING: Fault("stack overflow during exception entry (stacking)", BUSFAULT,
                                 arch.STKERR),
    native.FAULT_NOCP: Fault("FP instruction with the FPU disabled (CPACR CP10/CP11): NOCP "
                             "UsageFault", USAGEFAULT, arch.NOCP),
    native.FAULT_UNALIGNED: Fault(
        "unaligned access (UsageFault UNALIGNED: LDM/STM, LDRD/STRD, exclusives and "
        "VLDR/VLDM/VSTM need an aligned address; the base register is the address)",
        USAGEFAULT, arch.UNALIGNED),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class TakenFault:
    """A fault the firmware was given (`faults="firmware"`): when, what, who took it."""

    cycle: int
    kind: str
    taken_by: str  # "HardFault", "BusFault", "MemManage", "UsageFault" or "lockup"
    pc: int
    address: int | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    context: UcContext
    sram: list[bytes]
    flash_generation: int
    flash: list[bytes]
    peripherals: list[Any]
    clock: Any
    active_depth: int
    sleeping: bool
    idle_cycles: int
    semihost_output: bytes
    exit_code: int | None
    powered: bool
    power_cycles: int
    stalled: bool
    stall_cycles: int
    faults_taken: tuple[TakenFault, ...]


def _holding(name: str) -> property:
    """A machine attribute that may leave the machine to Python in a network's native
    lockstep (see `Machine._update_held`)."""
    field = f"_{name.lstrip('_')}_value"

    def get(self: Machine) -> bool:
        return bool(getattr(self, field))

    def put(self: Machine, value: bool) -> None:
        setattr(self, field, value)
        self._update_held()

    return property(get, put)


class Machine:
    """An emulated MCU running one firmware image in deterministic virtual time."""

    powered = _holding("powered")
    _reset_requested = _holding("_reset_requested")
    _stalled = _holding("_stalled")  # a read of the flash bank being written waits for the end
    _watch_dirty = _holding("_watch_dirty")

    def __init__(
        self,
        firmware: FirmwareImage | str | Path,
        board: Board = DEFAULT_BOARD,
        *,
        clock_hz: int | None = None,
        boot_address: int | None = None,
        seed: int = 0,
        images: Sequence[FirmwareImage | str | Path | tuple[str | Path, int]] = (),
        faults: str = "stop",
    ) -> None:
        if faults not in FAULT_MODES:
            raise ValueError(f"faults must be 'stop' (a fault ends the run with FirmwareFault) "
                             f"or 'firmware' (the firmware's handlers take it), not {faults!r}")
        # "stop": a fault raises FirmwareFault at once; "firmware": as on the chip, the fault
        # handlers take it (CFSR, HFSR, BFAR, MMFAR filled; escalation; lockup resets).
        self.faults = faults
        self.faults_taken: list[TakenFault] = []
        self.image = firmware if isinstance(firmware, FirmwareImage) else load_image(firmware)
        # more images in flash beside it (e.g. applications in their banks under a bootloader)
        self.images = [self.image] + [
            i if isinstance(i, FirmwareImage)
            else load_image(*i) if isinstance(i, tuple) else load_image(i)
            for i in images
        ]  # fmt: skip
        _check_overlaps(self.images)
        self.board = board.with_clock(clock_hz) if clock_hz else board
        if self.image.fpu_requirement and not self.board.fpu:
            raise FirmwareLoadError(
                f"{self.image.path}: built for an FPU ({self.image.fpu_requirement}) but board "
                f"{self.board.name} has none; run it on an FPU board (ASILB-M4F) or build it "
                "with -mfloat-abi=soft"
            )
        self.cpu = Cpu(self.board)
        self.cpu.imprecise_bus_errors = faults == "firmware"
        ctx = self.cpu.ctx
        # Native: the NVIC, SysTick and the run loop in C (HARNESS_NATIVE=0: the Python models)
        scs = NativeScs(self.cpu.lib, ctx, self.board.num_irqs) if nativelib.enabled() else None
        self._scs = scs
        fire_native = partial(self.cpu.lib.harness_fire_native, self.cpu.ctxp)
        self.clock = VirtualClock(self.board.core_clock_hz, ctx,
                                  (ctx, fire_native) if scs else None)  # fmt: skip
        self.semihosting = Semihosting(
            self.read_memory, lambda: self.clock.cycles * 100 // self.clock.hz, bytearray()
        )
        self._powered_value = True
        self._reset_requested_value = self._stalled_value = self._watch_dirty_value = False
        self._reset_cause = "software"
        self.seed = seed  # for what real parts leave random: SRAM after a power cycle
        self.power_cycles = 0
        self.stall_cycles = 0  # virtual cycles spent stalled
        if scs is not None:
            self.nvic: Nvic = NativeNvic("SCS", SCS_BASE, self.clock, scs, self._request_reset,
                                         self._sync_returns)  # fmt: skip
            self.systick: SysTick = NativeSysTick("SysTick", SYSTICK_BASE, self.clock, scs)
        else:
            self.nvic = Nvic("SCS", SCS_BASE, self.clock, self.board.num_irqs, self.request_stop,
                             self._request_reset, self._sync_returns)  # fmt: skip
            self.systick = SysTick("SysTick", SYSTICK_BASE, self.clock,
                                   lambda: self.nvic.pend(SYSTICK))  # fmt: skip
        self.peripherals: dict[str, Peripheral] = {
            "SCS": self.nvic,
            "SysTick": self.systick,
            "DWT": Dwt("DWT", DWT_BASE, self.clock),
            "COPROC": Cpacr("COPROC", CPACR_BASE, self.clock, self.cpu.ctx, self.board.fpu),
        }
        if self.board.fpu:
            self.peripherals["FPU"] = FpuRegisters("FPU", FPU_BASE, self.clock, self.cpu.ctx)
        for mem in self.cpu.memories("flash"):
            mem.data[:] = b"\xff" * len(mem.data)  # erased, until images are loaded
        partitions = tuple((p.name, p.base, p.size) for p in self.board.partitions)
        context = BuildContext(self.clock, self.nvic, self._region_bytes, self._request_reset,
                               self._bus_read, self._bus_write, seed, self._flash_changed,
                               self.power_off, partitions)  # fmt: skip
        for spec in self.board.peripherals:
            self.peripherals[spec.name] = KINDS[spec.kind].build(spec, context)
        self.cpu.map_peripherals(list(self.peripherals.values()))
        self._flc = next(iter(self._flash_controllers()), None)
        self._watch_dirty = self._watching = False
        if self._flc is not None:
            self._flc.on_change = self._flash_watch_changed
        for image in self.images:
            self._load(image)
        self._resync_flash(self.images)
        self._flash_generation = 0
        self.boot_address = self._choose_boot_address(boot_address)
        self.reset()

    def _bus_read(self, address: int, length: int) -> bytes:
        """Memory as a bus master (the security unit) reads it: ValueError outside it; flash
        through its ECC (`BusError` on an uncorrectable unit)."""
        found = self.cpu.host_memory(address, max(length, 1))
        if found is None:
            raise ValueError(f"0x{address:08X}..+{length} is not memory")
        mem, offset = found
        if mem.region.kind == "flash":
            for flc in self._flash_controllers():
                return flc.ecc_read(address, length)
        return bytes(mem.data[offset:offset + length])

    def _bus_write(self, address: int, data: bytes) -> None:
        """A bus master's write: RAM only (flash changes through its controller)."""
        found = self.cpu.host_memory(address, max(len(data), 1))
        if found is None or found[0].region.kind != "ram":
            raise ValueError(f"0x{address:08X}..+{len(data)} is not RAM")
        mem, offset = found
        mem.data[offset:offset + len(data)] = data
        self.cpu.code_changed(address, address + len(data))

    def _flash_changed(self, start: int, end: int) -> None:
        """The flash controller changed flash: snapshots must restore it, the core re-read it."""
        self._flash_generation += 1
        self.cpu.code_changed(start, end)

    def _update_held(self) -> None:
        """Tell the native lockstep whether this machine's next run needs Python: off,
        halted by SYS_EXIT, a reset to do, a stalled access or a flash watch to refresh."""
        self.cpu.ctx.held = int(not self._powered_value or self._reset_requested_value
                                or self._stalled_value or self._watch_dirty_value
                                or self.semihosting.exit_code is not None)  # fmt: skip

    def _flash_watch_changed(self) -> None:
        self._watch_dirty = True
        self.request_stop()

    def _refresh_watch(self) -> None:
        """Watch what the flash controller says must be seen: units that are not clean, the
        bank being written."""
        self._watch_dirty = False
        ranges = self._flc.watched_ranges() if self._flc is not None else []
        if ranges or self._watching:
            self.cpu.watch(ranges, self._watched_access)
            self._watching = bool(ranges)

    def _watched_access(self, address: int, size: int, fetch: bool) -> bool:
        """A CPU read or fetch of watched flash: stall on the busy bank, correct and count a
        single-bit unit, bus-fault on a double-bit one. True stops the core before it."""
        flc = self._flc
        assert flc is not None
        bank = flc.busy_bank()
        if bank is not None and bank[0] <= address < bank[1]:
            self._stalled = True
            return True
        end = min(address + size, flc.flash_base + flc.flash_size)
        try:
            flc.ecc_read(address, end - address)
        except EccError:
            self.cpu.memory_fault = MemoryFault("uncorrectable ECC error (double-bit) in flash",
                                                address, self.cpu.watched_pc, fetch,
                                                exact_pc=True)  # fmt: skip
            return True
        return False

    def _flash_controllers(self) -> list[FlashController]:
        return [p for p in self.peripherals.values() if isinstance(p, FlashController)]

    def _resync_flash(self, images: Sequence[FirmwareImage]) -> None:
        """Bytes placed in flash by loading are stored correctly: their ECC with them."""
        for flc in self._flash_controllers():
            for image in images:
                for seg in image.segments:
                    found = self.cpu.host_memory(seg.address, max(len(seg.data), 1))
                    if seg.data and found is not None and found[0].region.kind == "flash":
                        flc.resync_ecc(seg.address, seg.address + len(seg.data))

    def _region_bytes(self, name: str) -> memoryview:
        region = self.board.region(name)  # a clear KeyError for an unknown name
        return memoryview(next(m for m in self.cpu.memory if m.region == region).data)

    # ---- loading and reset ----

    def _load(self, image: FirmwareImage) -> None:
        for seg in image.segments:
            found = self.cpu.host_memory(seg.address, max(seg.mem_size, 1))
            if found is None:
                regions = ", ".join(f"{r.name} 0x{r.base:08X}-0x{r.end - 1:08X}"
                                    for r in self.board.regions)  # fmt: skip
                raise FirmwareLoadError(
                    f"{image.path}: segment at 0x{seg.address:08X} ({seg.mem_size} bytes) lies "
                    f"outside the memory map of board {self.board.name} ({regions})"
                )
            mem, off = found
            mem.data[off : off + len(seg.data)] = seg.data

    def _choose_boot_address(self, requested: int | None) -> int:
        """Reset fetches from the board's boot address (0) when firmware is there; an image
        without a bootloader boots from its own vector table, as a debugger would start it."""
        if requested is None:
            boot = self.board.partitions[0].base if self.board.partitions else 0
            covered = any(s.address <= boot < s.address + s.mem_size for s in self.image.segments)
            requested = boot if covered else self.image.vector_table
        sp, pc = self.cpu.read_word(requested), self.cpu.read_word(requested + 4)
        stack = self.board.region(self.board.stack_region)
        problem = None
        if sp is None or not stack.base < sp <= stack.end or sp % 4:
            problem = f"the initial SP must be a word-aligned address in {stack.name}"
        elif pc is None or not pc & 1:
            problem = "the reset vector must be a Thumb address (bit 0 set)"
        elif self.board.region_at(pc & ~1) is None:
            problem = "the reset vector lies outside the memory map"
        if problem:
            raise FirmwareLoadError(
                f"{self.image.path}: no valid vector table at 0x{requested:08X} "
                f"(initial SP {_hex(sp)}, reset vector {_hex(pc)}): {problem}"
            )
        return requested

    def reset(self, cause: str | None = None) -> None:
        """A warm reset (by default as SYSRESETREQ leaves it): core and peripherals reset,
        memory and time kept; `cause` ("software", "watchdog", "pin"; see `SysCtl`) is
        recorded for the firmware to read in SYSCTL.RSTCAUSE."""
        self._reset_requested = False
        if cause is not None:
            for p in self.peripherals.values():
                if isinstance(p, SysCtl):
                    p.record(cause)
        for p in self.peripherals.values():
            p.reset()
        self.nvic.vtor = self.boot_address
        sp = self.cpu.read_word(self.boot_address) or 0
        pc = self.cpu.read_word(self.boot_address + 4) or 0
        self.cpu.reset_core(sp, pc)
        self.sleeping = False
        self._stalled = False

    def _request_reset(self, cause: str = "software") -> None:
        self._reset_requested = True
        self._reset_cause = cause
        self.request_stop()

    def reset_pin(self) -> None:
        """The external reset pin: a warm reset now, recorded as such."""
        self.reset("pin")

    # ---- power ----

    def power_off(self) -> None:
        """Cut the power: nothing runs and every peripheral is quiet (reset) until
        `power_on()`; time still passes. Flash keeps its contents."""
        for p in self.peripherals.values():
            p.reset()
        self.powered = False
        self.sleeping = True
        # A cut inside a run (a flash operation's START) ends it before the next instruction:
        # whatever the core still had in flight never happens.
        self.cpu.stop_now()

    def power_on(self) -> None:
        """Power up: SRAM comes up holding a pattern drawn from the machine's seed and the
        number of power cycles (real SRAM powers up random; this keeps runs repeatable),
        flash as it was, then a power-on reset (SYSCTL.RSTCAUSE says so)."""
        self.power_cycles += 1
        noise = random.Random(f"{self.seed}:{self.power_cycles}")
        for mem in self.cpu.memories("ram"):
            mem.data[:] = noise.randbytes(len(mem.data))
            self.cpu.code_changed(mem.region.base, mem.region.end)
        self.powered = True
        self.semihosting.exit_code = None
        self.cpu.ctx.returned_count = 0
        self.reset("power-on")

    # ---- flash contents ----

    def save_flash(self, path: str | Path) -> None:
        """Write the flash contents to `path` (raw, every flash region in address order), to
        power the ECU up later or in another process (`load_flash`)."""
        target = Path(path)
        partial = target.with_name(f".partial-{target.name}")
        partial.write_bytes(b"".join(bytes(m.data) for m in self.cpu.memories("flash")))
        partial.replace(target)

    def load_flash(self, path: str | Path) -> None:
        """Replace the flash contents with a file `save_flash` wrote (for this board)."""
        data = Path(path).read_bytes()
        memories = self.cpu.memories("flash")
        size = sum(len(m.data) for m in memories)
        if len(data) != size:
            raise FirmwareLoadError(f"{path}: {len(data)} bytes, but board {self.board.name}'s "
                                    f"flash holds {size}: not its flash image")  # fmt: skip
        offset = 0
        for mem in memories:
            mem.data[:] = data[offset:offset + len(mem.data)]
            offset += len(mem.data)
        self._flash_generation += 1
        self.cpu.flush_code_cache()
        for flc in self._flash_controllers():
            flc.resync_ecc()

    def request_stop(self) -> None:
        """Ask a running core to come back to the scheduler at the next block boundary."""
        self.cpu.ctx.stop_request = 1

    # ---- running ----

    @property
    def cycles(self) -> int:
        return self.clock.cycles

    @property
    def sleeping(self) -> bool:
        """The core sleeps in WFI/WFE until an interrupt (or is off)."""
        return bool(self.cpu.ctx.sleeping)

    @sleeping.setter
    def sleeping(self, value: bool) -> None:
        self.cpu.ctx.sleeping = int(value)

    @property
    def idle_cycles(self) -> int:
        """Virtual cycles spent asleep in WFI (skipped, not simulated)."""
        return int(self.cpu.ctx.idle_cycles)

    @idle_cycles.setter
    def idle_cycles(self, value: int) -> None:
        self.cpu.ctx.idle_cycles = value

    @property
    def busy_cycles(self) -> int:
        """Virtual cycles in which the core executed instructions."""
        return self.clock.cycles - self.idle_cycles

    @property
    def now_ns(self) -> int:
        return self.clock.ns

    @property
    def now_ms(self) -> float:
        return self.clock.cycles * 1000 / self.clock.hz

    def run_for(self, *, s: float = 0, ms: float = 0, us: float = 0, cycles: int = 0) -> None:
        """Run for a span of virtual time."""
        self.run_to_cycle(self.clock.cycles + cycles + self.clock.cycles_for(s=s, ms=ms, us=us))

    def run_until(
        self,
        predicate: Callable[[], bool],
        *,
        timeout_ms: float,
        poll_us: float = 100,
    ) -> float:
        """Run until `predicate()` holds; return the virtual time (ms) when it was seen.

        The predicate is checked whenever the core stops (interrupts, peripheral events) and
        at least every `poll_us` of virtual time. Raises VirtualTimeout at `timeout_ms`.
        """
        end = self.clock.cycles + self.clock.cycles_for(ms=timeout_ms)
        step = max(1, self.clock.cycles_for(us=poll_us))
        while not predicate():
            if self.clock.cycles >= end:
                raise VirtualTimeout(f"condition not met within {timeout_ms} ms of virtual time")
            self.run_to_cycle(min(end, self.clock.cycles + step))
        return self.now_ms

    @property
    def semihost_output(self) -> str:
        """What the firmware wrote to the console through semihosting (`bkpt 0xAB`)."""
        return self.semihosting.output.decode("utf-8", "replace")

    @property
    def exit_code(self) -> int | None:
        """The status the firmware exited with through semihosting, or None while it runs."""
        return self.semihosting.exit_code

    def run_to_exit(self, *, timeout_ms: float) -> int:
        """Run until the firmware exits through semihosting (SYS_EXIT); returns its status."""
        self.run_until(lambda: self.exit_code is not None, timeout_ms=timeout_ms, poll_us=10_000)
        assert self.exit_code is not None
        return self.exit_code

    # ---- what a network needs of a machine to run it in lockstep ----

    @property
    def awake(self) -> bool:
        """Running code, or about to (an interrupt is pending): it may act at any moment."""
        return self.powered and (not self.sleeping or self.nvic.has_pending())

    def next_event_ns(self) -> int | None:
        """While asleep: when its next scheduled event (a timer, a wake-up) falls, in ns,
        rounded up; None if none is scheduled (or the power is off)."""
        cycle = self.clock.next_deadline() if self.powered else None
        return None if cycle is None else -(-cycle * NS_PER_S // self.clock.hz)

    def run_to_ns(self, target_ns: int) -> None:
        """Run up to `target_ns` of virtual time (the cycle at or before it)."""
        self.run_to_cycle(target_ns * self.clock.hz // NS_PER_S)

    def run_to_cycle(self, target: int) -> None:
        clock, ctx, cpu = self.clock, self.cpu.ctx, self.cpu
        if self.exit_code is not None:  # halted after SYS_EXIT: time passes, nothing runs
            ctx.cycles = max(ctx.cycles, target)
            return
        if self.sleeping and not self.nvic.has_pending() and not self._reset_requested:
            nxt = clock.next_deadline()
            if nxt is None or nxt > target:  # asleep until after `target`: nothing to do
                if target > ctx.cycles:
                    self.idle_cycles += target - ctx.cycles
                    ctx.cycles = target
                return
        if not self.powered:  # no power: time passes, nothing runs
            ctx.cycles = max(ctx.cycles, target)
            return
        while True:
            if self._reset_requested:
                self.reset(self._reset_cause)
            clock.fire_due()
            if not self.powered:  # a power cut in an event: time passes, nothing runs
                ctx.cycles = max(ctx.cycles, target)
                return
            stalled = self._stalled and self._flc is not None and self._flc.busy
            self._stalled = stalled
            if self._scs is not None and not stalled:
                if self._advance_natively(target):
                    return
                continue
            if not stalled:  # a stalled access holds the core: no exception entry either
                self._take_exceptions()
                if self._reset_requested:  # a lockup
                    continue
            now = ctx.cycles
            if now >= target:
                return
            nxt = clock.next_deadline()
            deadline = target if nxt is None or nxt > target else nxt
            if self.sleeping or stalled:
                if stalled:
                    self.stall_cycles += deadline - now
                else:
                    self.idle_cycles += deadline - now
                ctx.cycles = deadline  # nothing runs until the next event
                continue
            if self._watch_dirty:
                self._refresh_watch()
            ctx.deadline = deadline
            if self._run_core(cpu.run):
                return

    def _advance_natively(self, target: int) -> bool:
        """One call of the native loop and what Python does after it; True: stop here."""
        if self._watch_dirty:
            self._refresh_watch()
        return self._after_advance(self.cpu.advance(target))

    def _after_advance(self, result: int) -> bool:
        """What Python does after the native loop returned `result`; True: stop here."""
        if result == native.ADV_TARGET:
            return True
        if result == native.ADV_TAKE:  # a vector to check, or a stacking fault to report
            self._take_exceptions()
        elif result == native.ADV_STOP:
            cpu = self.cpu
            return self._run_core(lambda: cpu.raise_run_errors(cpu.ctx.run_error))
        return False  # ADV_EVENT: Python's events are due; ADV_HELD: Python's to run

    def native_lockstep(self) -> tuple[int, int, int] | None:
        """(Unicorn handle, native context, clock hz) for a network's native lockstep; None
        with the Python models (HARNESS_NATIVE=0)."""
        if self._scs is None:
            return None
        cpu = self.cpu
        uc_handle = ctypes.cast(cpu.uch, ctypes.c_void_p).value or 0
        return uc_handle, ctypes.addressof(cpu.ctx), self.clock.hz

    def continue_native(self, result: int, target_ns: int) -> None:
        """Take over from the network's native lockstep, which ran this machine towards
        `target_ns` until it returned `result` (a `harness_advance` result or ADV_HELD)."""
        if not self._after_advance(result):
            self.run_to_ns(target_ns)

    def _run_core(self, run: Callable[[], None]) -> bool:
        """Run the core (or take the result of a native run) and handle why it stopped;
        True when the firmware has exited."""
        try:
            run()
        except UcError as err:
            if not self.powered:
                return False
            self._sync_returns()
            fault, pc = self._memory_fault(err)
            try:
                self._firmware_fault(fault, pc)
            except FirmwareFault as stop:
                raise stop from err
            return False
        self._after_run()
        return self.exit_code is not None

    def _sync_returns(self) -> None:
        """Retire in the NVIC the exception returns the native hook completed."""
        ctx = self.cpu.ctx
        for _ in range(ctx.returned_count):
            self.nvic.exception_returned()
        ctx.returned_count = 0

    def _after_run(self) -> None:
        if not self.powered:  # the power went in the run: the core's state is gone
            return
        self._sync_returns()
        ctx = self.cpu.ctx
        reasons = ctx.stop_reasons
        if reasons & native.STOP_FAULT:
            fault = NATIVE_FAULTS.get(ctx.fault_kind)
            if fault is None:  # FAULT_TOO_MANY_CHECKS: the harness's limit, not the chip's
                raise SimulationError(
                    f"more than {native.ALIGN_SET_SIZE * 3 // 4} load/store-multiple "
                    "instructions to check for alignment; the harness cannot track them all"
                )
            if ctx.fault_kind == native.FAULT_BAD_EXC_RETURN:
                kind = f"bad exception return (EXC_RETURN 0x{ctx.fault_exc_return:08X})"
                fault = replace(fault, kind=kind)
            elif ctx.fault_kind == native.FAULT_NOCP and not self.board.fpu:
                kind = (f"FP instruction on a core without an FPU (board {self.board.name}): "
                        "NOCP UsageFault")  # fmt: skip
                fault = replace(fault, kind=kind)
            else:
                fault = replace(fault, address=ctx.fault_addr)
            self._firmware_fault(fault, ctx.trap_pc)
            return
        if reasons & native.STOP_TRAP:
            self._trap(ctx.trap_intno, ctx.trap_pc)
        elif reasons & native.STOP_SLEEP and not self._reset_requested:
            self.sleeping = True  # the run ended on WFI/WFE, whatever else asked it to stop
        elif not reasons:
            # Unicorn returned for none of the reasons the harness knows: never loop on it.
            pc = self.cpu.pc
            raise SimulationError(f"the core stopped for no known reason at pc=0x{pc:08X} "
                                  f"({self.image.function_at(pc) or 'no function'})")  # fmt: skip

    def _trap(self, intno: int, pc: int) -> None:
        if intno == SVC_TRAP:
            self.nvic.pend(SVCALL)
            masks = self.cpu.sample_masks(watch=False)
            if self.nvic.exception_to_take(*masks) != SVCALL:
                self.nvic.unpend(SVCALL)
                self._firmware_fault(Fault("SVC at a priority that blocks SVCall (escalates "
                                           "to HardFault)", HARDFAULT, hfsr=arch.FORCED), pc)
            return
        if intno == BKPT_TRAP and self.read_memory(pc, 2) == SEMIHOSTING_BKPT.to_bytes(2, "little"):
            self._semihosting_call(pc)
            self._update_held()  # SYS_EXIT halts the machine
            return
        if intno == PREFETCH_ABORT_TRAP:
            mapped = any(lo <= pc <= hi for lo, hi, _ in self.cpu.uc.mem_regions())
            memory = "non-executable" if mapped else "unmapped"
            exception, bit = (MEMMANAGE, arch.IACCVIOL) if mapped else (BUSFAULT, arch.IBUSERR)
            self._firmware_fault(Fault(f"instruction fetch from {memory} memory", exception,
                                       bit, address=pc, far=False), pc)  # fmt: skip
            return
        self._firmware_fault(TRAP_FAULTS.get(intno, Fault(f"CPU exception {intno}", HARDFAULT)),
                             pc)  # fmt: skip

    def _semihosting_call(self, pc: int) -> None:
        cpu = self.cpu
        op = cpu.reg("r0")
        try:
            result = self.semihosting.call(op, cpu.reg("r1"))
        except UnsupportedCall as err:
            raise self._fault(f"semihosting call not supported: {err}", pc, None) from None
        cpu.set_reg("r0", result)
        cpu.set_reg("pc", (pc + 2) | 1)

    def _take_exceptions(self) -> None:
        nvic, cpu = self.nvic, self.cpu
        ctx = cpu.ctx
        if not nvic.has_pending():
            ctx.stop_on_return = ctx.watch_masks = 0
            return
        masks = cpu.sample_masks(watch=True)  # exception entry leaves the masks unchanged
        if self.sleeping and masks[0] & 1 and nvic.exception_to_take(0, *masks[1:]) is not None:
            self.sleeping = False  # WFI wakes even while PRIMASK holds the interrupt off
        while (exc := nvic.exception_to_take(*masks)) is not None:
            vector = nvic.vtor + 4 * exc
            handler = cpu.read_word(vector)
            problem = self._vector_problem(handler)
            if problem:
                fault = Fault(f"bad vector for {self._exception_name(exc)}: the entry at "
                              f"0x{vector:08X} holds {_hex(handler)} ({problem})", HARDFAULT,
                              hfsr=arch.VECTTBL, address=vector, far=False)  # fmt: skip
                nvic.unpend(exc)
                # HardFault's own vector: nothing can take that fault (lockup)
                self._firmware_fault(fault, cpu.pc, lockup=exc == HARDFAULT)
                if self._reset_requested:
                    return
                continue
            assert handler is not None
            if not cpu.enter_exception(exc, handler):  # stacking failed: stops in both modes
                fault = NATIVE_FAULTS[ctx.fault_kind]
                raise self._fault(fault.kind, cpu.pc, ctx.fault_addr)
            nvic.activate(exc)
            self.sleeping = False
            if not nvic.has_pending():
                break
        # Something stays pending: let the core stop when a return or a mask change may
        # allow it, so that it is taken at the right instruction.
        pending = int(nvic.has_pending() and nvic.highest_pending() is not None)
        ctx.stop_on_return = ctx.watch_masks = pending

    def _vector_problem(self, handler: int | None) -> str | None:
        """Why a vector table entry cannot be taken, as ARMv7-M would fault on it."""
        if handler is None:
            return "the table lies outside memory"
        if handler == 0:
            return "no handler: a zero entry runs into whatever lies at address 0"
        if not handler & 1:
            return "Thumb bit clear: INVSTATE UsageFault, escalated to HardFault"
        if self.board.region_at(handler & ~1) is None:
            return "the handler lies outside the memory map"
        return None

    def _exception_name(self, exc: int) -> str:
        if exc < FIRST_IRQ:
            return SYSTEM_EXCEPTIONS.get(exc, f"exception {exc}")
        irq = exc - FIRST_IRQ
        owners = [name for p in self.board.peripherals for name, n in p.irq_names() if n == irq]
        return f"IRQ {irq}" + (f" ({', '.join(owners)})" if owners else "")

    # ---- faults ----

    def _fault(self, kind: str, pc: int, address: int | None) -> FirmwareFault:
        return FirmwareFault(kind, pc, self.image.function_at(pc), address, self.clock.cycles)

    def _memory_fault(self, err: UcError) -> tuple[Fault, int]:
        """The fault a failed run met, and the PC of the instruction that met it."""
        found = self.cpu.memory_fault
        if found is None:
            fault = UC_ERROR_FAULTS.get(err.errno, Fault(f"emulator error: {err}", HARDFAULT))
            return fault, self.cpu.pc
        kind = found.kind
        stack = self.board.region(self.board.stack_region)
        if "write" in kind and stack.base - 0x1000 <= found.address < stack.base:
            kind = f"stack overflow ({kind} below {stack.name})"
        pc = found.pc if found.pc is not None else self.cpu.pc
        if found.imprecise:
            return Fault(kind, BUSFAULT, arch.IMPRECISERR, address=found.address, far=False), pc
        if not found.fetch:
            if self.faults == "firmware" and pc == self.cpu.ctx.last_block and not found.exact_pc:
                # Unicorn 2.1.4 sometimes leaves the PC of a failed access at the start of its
                # block (seen after an instruction fetch fault); resuming there would run the
                # block's first instructions twice, so stop rather than guess.
                raise self._fault(f"{kind} somewhere in the block at 0x{pc:08X} (the emulator "
                                  "did not say which instruction; the firmware cannot be given "
                                  "a precise fault)", pc, found.address)  # fmt: skip
            return Fault(kind, BUSFAULT, arch.PRECISERR, address=found.address), pc
        if found.protection:  # fetch from an execute-never region
            return Fault(kind, MEMMANAGE, arch.IACCVIOL, address=found.address, far=False), pc
        return Fault(kind, BUSFAULT, arch.IBUSERR, address=found.address, far=False), pc

    def _firmware_fault(self, fault: Fault, pc: int, *, lockup: bool = False) -> None:
        """Stop with FirmwareFault (faults="stop"), or give the fault to the firmware as
        ARMv7-M does: the status registers filled, the handler that may take it pended with
        the faulting instruction as its return address, or a lockup (the chip resets)."""
        if self.faults == "stop":
            raise self._fault(fault.kind, pc, fault.address)
        nvic = self.nvic
        execution = nvic.execution_priority(*self.cpu.sample_masks(watch=False))
        decision = arch.escalate(fault, nvic.regs["SHCSR"],
                                 nvic.group_priority(nvic.prio[fault.exception]),
                                 -1 if lockup else execution)  # fmt: skip
        nvic.regs["CFSR"] |= decision.cfsr
        nvic.regs["HFSR"] |= decision.hfsr
        register = {BUSFAULT: "BFAR", MEMMANAGE: "MMFAR"}.get(fault.exception)
        if register and fault.far and fault.address is not None:
            nvic.regs[register] = fault.address
        self.cpu.set_reg("pc", pc | 1)
        taken = "lockup" if decision.exception is None else SYSTEM_EXCEPTIONS[decision.exception]
        self.faults_taken.append(TakenFault(self.clock.cycles, fault.kind, taken, pc,
                                            fault.address))  # fmt: skip
        log.info("%s at pc=0x%08X: %s", fault.kind, pc, taken)
        if decision.exception is None:
            self._request_reset("lockup")  # the board resets a locked-up core
        else:
            nvic.pend(decision.exception)

    # ---- inspecting and changing state ----

    def peripheral(self, name: str) -> Peripheral:
        try:
            return self.peripherals[name]
        except KeyError:
            raise KeyError(f"board {self.board.name} has no peripheral {name!r}; "
                           f"it has {', '.join(self.peripherals)}") from None  # fmt: skip

    def gpio(self, name: str) -> Gpio:
        p = self.peripheral(name)
        if not isinstance(p, Gpio):
            raise TypeError(f"{name} is not a GPIO port")
        return p

    def uart(self, name: str) -> Usart:
        p = self.peripheral(name)
        if not isinstance(p, Usart):
            raise TypeError(f"{name} is not a USART")
        return p

    def read_memory(self, address: int, length: int) -> bytes:
        return bytes(self.cpu.uc.mem_read(address, length))

    def write_memory(self, address: int, data: bytes) -> None:
        found = self.cpu.host_memory(address, len(data))
        if found is not None and found[0].region.kind == "flash":
            self._flash_generation += 1
            found[0].data[found[1] : found[1] + len(data)] = data
            self.cpu.code_changed(address, address + len(data))
            for flc in self._flash_controllers():  # a test's write is stored correctly
                flc.resync_ecc(address, address + len(data))
        else:
            self.cpu.uc.mem_write(address, bytes(data))

    def read_symbol(self, name: str) -> int | bytes:
        """A symbol's value, typed by its size: 1/2/4/8-byte objects as unsigned ints."""
        sym = self.image.symbol(name)
        data = self.read_memory(sym.address, sym.size or 4)
        return int.from_bytes(data, "little") if len(data) in (1, 2, 4, 8) else data

    def write_symbol(self, name: str, value: int | bytes) -> None:
        sym = self.image.symbol(name)
        size = sym.size or 4
        if isinstance(value, int):
            if size not in (1, 2, 4, 8):
                raise TypeError(f"{name} is {size} bytes; write bytes, not an int")
            if not -(1 << (8 * size - 1)) <= value < (1 << (8 * size)):
                raise ValueError(f"{value} does not fit {name} ({size} bytes)")
            data = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        else:
            if len(value) != size:
                raise ValueError(f"{name} is {size} bytes, got {len(value)}")
            data = bytes(value)
        self.write_memory(sym.address, data)

    def read_u32(self, address: int) -> int:
        return int(struct.unpack("<I", self.read_memory(address, 4))[0])

    # ---- snapshots ----

    def snapshot(self) -> Snapshot:
        """Everything that defines the machine's future: CPU, memory, peripherals, clock."""
        ctx = self.cpu.ctx
        return Snapshot(
            context=self.cpu.uc.context_save(),
            sram=[bytes(m.data) for m in self.cpu.memories("ram")],
            flash_generation=self._flash_generation,
            flash=[bytes(m.data) for m in self.cpu.memories("flash")],
            peripherals=[p.snapshot() for p in self.peripherals.values()],
            clock=self.clock.state(),
            active_depth=ctx.active_depth,
            sleeping=self.sleeping,
            idle_cycles=self.idle_cycles,
            semihost_output=bytes(self.semihosting.output),
            exit_code=self.semihosting.exit_code,
            powered=self.powered,
            power_cycles=self.power_cycles,
            stalled=self._stalled,
            stall_cycles=self.stall_cycles,
            faults_taken=tuple(self.faults_taken),
        )

    def restore(self, snap: Snapshot) -> None:
        self.cpu.uc.context_restore(snap.context)
        for mem, data in zip(self.cpu.memories("ram"), snap.sram, strict=True):
            mem.data[:] = data
            # Code may run from RAM: drop translations of what was just overwritten.
            self.cpu.code_changed(mem.region.base, mem.region.end)
        if snap.flash_generation != self._flash_generation:
            for mem, data in zip(self.cpu.memories("flash"), snap.flash, strict=True):
                mem.data[:] = data
            self._flash_generation = snap.flash_generation
            self.cpu.flush_code_cache()
        for p, state in zip(self.peripherals.values(), snap.peripherals, strict=True):
            p.restore(state)
        self.clock.restore(snap.clock)
        ctx = self.cpu.ctx
        ctx.active_depth = snap.active_depth
        ctx.returned_count = 0
        self.sleeping = snap.sleeping
        self.idle_cycles = snap.idle_cycles
        self.semihosting.output[:] = snap.semihost_output
        self.semihosting.exit_code = snap.exit_code
        self.powered, self.power_cycles = snap.powered, snap.power_cycles
        self._stalled, self.stall_cycles = snap.stalled, snap.stall_cycles
        self.faults_taken = list(snap.faults_taken)
        self._reset_requested = False
        self._watch_dirty = True


def _check_overlaps(images: Sequence[FirmwareImage]) -> None:
    """Two images may not place bytes at one address: the later would overwrite the other."""
    spans = sorted((seg.address, seg.address + len(seg.data), str(image.path))
                   for image in images for seg in image.segments if seg.data)  # fmt: skip
    reach: tuple[int, int, str] | None = None  # the span reaching furthest so far
    for start, end, path in spans:
        if reach is not None and start < reach[1] and path != reach[2]:
            raise FirmwareLoadError(
                f"{path} (0x{start:08X}-0x{end - 1:08X}) overlaps {reach[2]} "
                f"(0x{reach[0]:08X}-0x{reach[1] - 1:08X}): images must not share flash")
        if reach is None or end > reach[1]:
            reach = (start, end, path)


Ecu = Machine


def _hex(value: int | None) -> str:
    return "unreadable" if value is None else f"0x{value:08X}"
