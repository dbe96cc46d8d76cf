"""The M_CAN model with its data path in C (native.c), on the state the Python model reads.

`NativeMcan` is the Python `Mcan` whose per-frame work runs natively: the registers an ISR
touches (IR, IE/ILS/ILE, RXFnS/RXFnA, TXFQS, TXBAR/TXBRP/TXBTO, TXEFS/TXEFA) are served by C
MMIO functions without a Python frame, and the bus's offer / transmitted / receive run in
C. The register values, TX requests, error counters and FIFO indices live in one C struct;
the Python model's attributes are views of it, so whatever the C side declines (it never
changes anything then) the Python model does on the same state. `HARNESS_NATIVE=0` builds
the plain Python model instead; tests/test_mcan_native.py drives both with the same random
traffic and requires identical registers, message RAM, TX requests and interrupt lines.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, ClassVar

from harness.clock import VirtualClock
from harness.core import native
from harness.frames.can import CanFrame
from harness.frames.native import NativeFrame
from harness.peripherals.base import IrqLine
from harness.peripherals.mcan.model import Mcan, Setup, TxRequest
from harness.peripherals.mcan.regs import MCAN_BLOCK

WORDS = MCAN_BLOCK.size // 4  # native.c's WORDS
TXFQS_OFFSET = MCAN_BLOCK.register("TXFQS").offset  # served in C despite the model's read hook
NATIVE_WRITES = ("IR", "IE", "ILS", "ILE", "TXBTIE", "RXF0A", "RXF1A", "TXEFA", "TXBAR")


class _Tx(ctypes.Structure):
    _fields_ = [
        ("requested_at", ctypes.c_uint64),
        ("marker", ctypes.c_uint32),
        ("event", ctypes.c_uint32),
        ("frame", NativeFrame),
    ]


class _Fifo(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint32) for name in
                ("start", "size", "watermark", "overwrite", "data_field", "element_bytes")]


_U32 = ctypes.c_uint32


class McanCore(ctypes.Structure):
    """Mirror of `mcan_core` in native.c: everything a snapshot holds."""

    _fields_ = [
        ("regs", _U32 * WORDS),
        *((name, _U32) for name in (
            "setup_valid", "fd", "monitoring", "loopback", "dedicated", "fifo_queue",
            "queue_mode", "tx_start", "tx_element_bytes", "event_start", "event_size",
            "event_watermark")),
        ("fifos", _Fifo * 2),
        ("pending", _U32),
        ("offered", ctypes.c_int32),
        ("looping", ctypes.c_int32),
        *((name, _U32) for name in ("tec", "rec", "fifo_get", "fifo_used", "recovering",
                                    "lines")),
        ("tx", _Tx * 32),
    ]  # fmt: skip


_LINES_CB = ctypes.CFUNCTYPE(None, ctypes.c_uint32)
_WAKE_CB = ctypes.CFUNCTYPE(None)


class McanState(ctypes.Structure):
    """Mirror of `mcan_state` in native.c."""

    _fields_ = [
        ("core", McanCore),
        *((name, _U32 * WORDS) for name in ("write_only", "read_clear", "replace",
                                            "one_to_clear", "one_to_set", "defined",
                                            "unmodelled")),
        ("served_read", ctypes.c_uint8 * WORDS),
        ("served_write", ctypes.c_uint8 * WORDS),
        ("ram", ctypes.c_void_p),
        ("ram_size", _U32),
        ("cycles", ctypes.c_void_p),
        ("hz", ctypes.c_uint64),
        ("set_lines", _LINES_CB),
        ("wake_bus", _WAKE_CB),
        ("served", ctypes.c_uint64),
        ("declined", ctypes.c_uint64),
        ("nvic", ctypes.c_void_p),
        ("irqs", _U32 * 2),
        ("bus", ctypes.c_void_p),
    ]  # fmt: skip


_bound: set[int] = set()


def _bind(lib: ctypes.CDLL) -> ctypes.CDLL:
    if id(lib) in _bound:
        return lib
    assert lib.mcan_sizeof_core() == ctypes.sizeof(McanCore), "McanCore differs from native.c"
    assert lib.mcan_sizeof_state() == ctypes.sizeof(McanState), "McanState differs from native.c"
    ptr, u32 = ctypes.c_void_p, ctypes.c_uint32
    for name, restype, argtypes in (
        ("mcan_mmio_read", ctypes.c_int, (ptr, u32, u32, ptr)),
        ("mcan_mmio_write", ctypes.c_int, (ptr, u32, u32, u32)),
        ("mcan_update_interrupts", None, (ptr,)),
        ("mcan_txfqs", u32, (ptr,)),
        ("mcan_offer", ctypes.c_int32, (ptr, ctypes.c_uint64, ptr)),
        ("mcan_pending_since", ctypes.c_uint64, (ptr,)),
        ("mcan_transmitted", ctypes.c_int, (ptr, ptr)),
        ("mcan_receive", ctypes.c_int, (ptr, ptr)),
    ):
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    _bound.add(id(lib))
    return lib


class PendingRequests(MutableMapping[int, TxRequest]):
    """The model's `_pending` (buffer index -> TxRequest), kept in the C struct."""

    def __init__(self, core: McanCore) -> None:
        self._core = core

    def __getitem__(self, index: int) -> TxRequest:
        if not 0 <= index < 32 or not self._core.pending >> index & 1:
            raise KeyError(index)
        t = self._core.tx[index]
        return TxRequest(index, t.requested_at, t.frame.frame(), t.marker, bool(t.event))

    def __setitem__(self, index: int, request: TxRequest) -> None:
        if not 0 <= index < 32:
            raise KeyError(index)
        t = self._core.tx[index]
        t.requested_at, t.marker, t.event = request.requested_at, request.marker, request.event
        t.frame.fill(request.frame)
        self._core.pending |= 1 << index

    def __delitem__(self, index: int) -> None:
        if not 0 <= index < 32 or not self._core.pending >> index & 1:
            raise KeyError(index)
        self._core.pending &= ~(1 << index)

    def __iter__(self) -> Iterator[int]:
        bits = self._core.pending
        return iter([i for i in range(32) if bits >> i & 1])

    def __len__(self) -> int:
        return bin(self._core.pending).count("1")


def _index_property(field: str) -> property:
    """An optional buffer index of the model (None in Python, -1 in C)."""

    def get(self: NativeMcan) -> int | None:
        value = int(getattr(self._state.core, field))
        return None if value < 0 else value

    def put(self: NativeMcan, value: int | None) -> None:
        setattr(self._state.core, field, -1 if value is None else value)

    return property(get, put)


def _count_property(field: str) -> property:
    def get(self: NativeMcan) -> int:
        return int(getattr(self._state.core, field))

    def put(self: NativeMcan, value: int) -> None:
        setattr(self._state.core, field, value)

    return property(get, put)


class NativeMcan(Mcan):
    extra_state: ClassVar[tuple[str, ...]] = ()  # all of it is in the C struct

    _offered = _index_property("offered")
    _looping = _index_property("looping")
    _tec = _count_property("tec")
    _rec = _count_property("rec")
    _fifo_get = _count_property("fifo_get")
    _fifo_used = _count_property("fifo_used")

    def __init__(
        self,
        name: str,
        base: int,
        clock: VirtualClock,
        lines: tuple[IrqLine, IrqLine],
        message_ram: memoryview,
        can_clock_hz: int,
    ) -> None:
        cycles_address = clock.counter_address()
        if cycles_address is None:
            raise ValueError(f"{name}: the native M_CAN needs a clock counted in native memory")
        self._lib = _bind(native.library())
        self._state = McanState()
        self._requests = PendingRequests(self._state.core)
        self._setup_cache: Setup | None = None
        # An exception in a callback from C must not unwind through C. Under a call made here
        # (`_c`) it is raised when C returns; under an MMIO access that C serves for the CPU
        # it goes to `stop_core` (set by the CPU: it stops the core and raises it from run).
        self._error: BaseException | None = None
        self._calls = 0  # calls into C made here, in progress
        self.stop_core: Callable[[BaseException], None] | None = None
        super().__init__(name, base, clock, lines, message_ram, can_clock_hz)
        st, core = self._state, self._state.core
        views: dict[str, Any] = {}
        for reg in self.block.registers:
            view = (_U32 * reg.count).from_buffer(core.regs, reg.offset)
            view[:] = self.regs.values[reg.name]  # type: ignore[assignment]
            views[reg.name] = view
        self.regs.values = views  # views of the C registers: the model reads and writes C
        self._describe_registers()
        ram_address = ctypes.addressof(ctypes.c_char.from_buffer(message_ram))
        st.ram, st.ram_size = ram_address, len(message_ram)
        st.cycles, st.hz = cycles_address, clock.hz
        self._callbacks = (_LINES_CB(self._lines_from_c), _WAKE_CB(self._wake_from_c))
        st.set_lines, st.wake_bus = self._callbacks
        targets = [getattr(line, "native_target", lambda: None)() for line in lines]
        if all(targets):  # lines of the native NVIC: C sets them itself
            st.nvic = targets[0][0]  # type: ignore[index]
            st.irqs[:] = [t[1] for t in targets]  # type: ignore[index]
        core.lines = 0
        self._address = ctypes.addressof(st)
        self._frame = NativeFrame()

    def _describe_registers(self) -> None:
        """The access masks of every register word, and which ones C serves."""
        st = self._state
        for offset, masks in self.regs.word_masks().items():
            w = offset // 4
            st.write_only[w], st.read_clear[w] = masks.write_only, masks.read_clear
            st.replace[w], st.one_to_clear[w] = masks.replace, masks.one_to_clear
            st.one_to_set[w], st.defined[w] = masks.one_to_set, masks.defined
            st.unmodelled[w] = masks.unmodelled
            name = masks.register.name
            st.served_read[w] = name not in self.regs.on_read or offset == TXFQS_OFFSET
            st.served_write[w] = not masks.guards and (
                name not in self.regs.on_write or name in NATIVE_WRITES)

    # ---- the model's state, seen in the C struct ----

    @property  # type: ignore[override]
    def _pending(self) -> PendingRequests:
        return self._requests

    @_pending.setter
    def _pending(self, value: dict[int, TxRequest]) -> None:
        self._state.core.pending = 0
        for index, request in value.items():
            self._requests[index] = request

    @property
    def _setup(self) -> Setup | None:
        return self._setup_cache

    @_setup.setter
    def _setup(self, s: Setup | None) -> None:
        self._setup_cache = s
        core = self._state.core
        core.setup_valid = s is not None
        if s is None:
            return
        core.fd, core.monitoring, core.loopback = s.fd, s.monitoring, s.loopback
        core.dedicated, core.fifo_queue, core.queue_mode = s.dedicated, s.fifo_queue, s.queue_mode
        core.tx_start, core.tx_element_bytes = s.tx_start, s.tx_element_bytes
        core.event_start, core.event_size = s.event_start, s.event_size
        core.event_watermark = s.event_watermark
        for fifo, c in zip(s.fifos, core.fifos, strict=True):
            c.start, c.size, c.watermark = fifo.start, fifo.size, fifo.watermark
            c.overwrite, c.data_field = fifo.overwrite, fifo.data_field
            c.element_bytes = fifo.element_bytes

    def _sync(self) -> None:
        """After the Python model ran: what C derives from the model's deadlines."""
        self._state.core.recovering = self._recovery.at is not None
        if self._setup_cache is None and not self.initialising:
            _ = self.setup  # C serves the data path only with the configuration decoded

    # ---- callbacks from C ----

    def _keep_error(self, err: BaseException) -> None:
        if self._calls or self.stop_core is None:
            self._error = self._error or err
        else:
            self.stop_core(err)

    def _c(self, fn: Any, *args: Any) -> Any:
        """Call C on this controller; raise what a callback from it raised."""
        self._calls += 1
        try:
            result = fn(self._address, *args)
        finally:
            self._calls -= 1
        err, self._error = self._error, None
        if err is not None:
            raise err
        return result

    def _lines_from_c(self, levels: int) -> None:
        try:
            self.lines[0].set(bool(levels & 1))
            self.lines[1].set(bool(levels & 2))
        except BaseException as err:  # must not unwind through C
            self._keep_error(err)

    def _wake_from_c(self) -> None:
        try:
            self._wake_bus()
        except BaseException as err:  # must not unwind through C
            self._keep_error(err)

    # ---- what C serves, with the Python model where C declines ----

    @property
    def native_counts(self) -> tuple[int, int]:
        """(served in C, left to the Python model): register accesses and bus events."""
        return self._state.served, self._state.declined

    def native_mmio(self) -> tuple[int, int, int]:
        """(read function, write function, state) for the CPU's native MMIO pages."""
        fn = self._lib
        return (ctypes.cast(fn.mcan_mmio_read, ctypes.c_void_p).value or 0,
                ctypes.cast(fn.mcan_mmio_write, ctypes.c_void_p).value or 0,
                self._address)  # fmt: skip

    def read(self, offset: int, size: int) -> int:
        value = _U32()
        if not self._c(self._lib.mcan_mmio_read, offset, size, ctypes.byref(value)):
            return int(value.value)
        return self.model_read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        if self._c(self._lib.mcan_mmio_write, offset, size, value):
            self.model_write(offset, size, value)

    def model_read(self, offset: int, size: int) -> int:
        """A read the C side declined, done by the model (the CPU's page fallback too)."""
        return super().read(offset, size)

    def model_write(self, offset: int, size: int, value: int) -> None:
        """A write the C side declined, done by the model (the CPU's page fallback too)."""
        try:
            super().write(offset, size, value)
        finally:
            self._sync()

    def update_interrupts(self) -> None:
        self._c(self._lib.mcan_update_interrupts)

    @property
    def txfqs(self) -> int:
        _ = self.setup
        return int(self._c(self._lib.mcan_txfqs))

    def offer(self, now_ns: int) -> CanFrame | None:
        index = self._c(self._lib.mcan_offer, now_ns, ctypes.byref(self._frame))
        return None if index < 0 else self._frame.frame()

    def pending_since(self) -> int | None:
        at = int(self._c(self._lib.mcan_pending_since))
        return None if at == 2**64 - 1 else at

    def transmitted(self, frame: CanFrame) -> None:
        if self._c(self._lib.mcan_transmitted, ctypes.byref(self._frame.fill(frame))):
            super().transmitted(frame)

    def receive(self, frame: CanFrame) -> None:
        if self._c(self._lib.mcan_receive, ctypes.byref(self._frame.fill(frame))):
            super().receive(frame)

    # ---- on a native bus (network/bus.c), which calls the C side itself ----

    def join_native_bus(self, bus_address: int) -> int:
        """TX requests now go to that bus in C; returns this controller's C state, for the
        bus to offer, deliver and confirm frames with."""
        self._state.bus = bus_address
        return self._address

    def model_transmitted(self, frame: CanFrame) -> None:
        """A confirmation the C side declined, done by the model."""
        super().transmitted(frame)

    def model_receive(self, frame: CanFrame) -> None:
        """A frame the C side declined, taken by the model."""
        super().receive(frame)

    # ---- Python paths that change what C derives (bus_error goes through the two errors) ----

    def transmit_error(self) -> None:
        try:
            super().transmit_error()
        finally:
            self._sync()

    def receive_error(self) -> None:
        try:
            super().receive_error()
        finally:
            self._sync()

    def _recovered(self) -> None:
        self._state.core.recovering = 0  # the bus sees it on the bus again at once
        try:
            super()._recovered()
        finally:
            self._sync()

    def reset(self) -> None:
        try:
            super().reset()
        finally:
            self._sync()

    def snapshot(self) -> Any:
        return super().snapshot(), bytes(self._state.core)

    def restore(self, state: Any) -> None:
        python, core = state
        super().restore(python)
        ctypes.memmove(ctypes.addressof(self._state.core), core, len(core))
        self._setup = None
        self._sync()
