"""The CAN bus with its arbitration, timing, delivery and statistics in C (bus.c).

`NativeCanBus` is `CanBus` (can.py, the reference) run natively: its events are queued in C
on the network clock, merged with the clock's Python events by (time, sequence number);
native M_CANs are offered, confirmed and fed frames from C; Python nodes (trace players,
testers, python-can endpoints) and whatever an M_CAN's C side declines are called back.
`HARNESS_NATIVE=0` gives every network the Python bus; tests/test_can_bus_native.py drives
both with the same random traffic and requires the same frames, timestamps and statistics.

`NativeNetClock` is the network clock these buses queue on, and runs the network's lockstep
in C (`Network.step` / `advance_to` of network.py, the reference; tests/test_lockstep_native.py).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

from harness.clock import NEVER, VirtualClock
from harness.core import native
from harness.frames.can import CanFrame
from harness.frames.ids import normalise
from harness.frames.native import NativeFrame
from harness.network.can import BusStats, CanBus, CanNode, PythonNode

_U32, _U64 = ctypes.c_uint32, ctypes.c_uint64
MAX_NODES, MAX_BUSES, MAX_ERROR_IDS, LOG_SIZE, MAX_MACHINES = 32, 16, 64, 256, 32  # bus.c
OP_OFFER, OP_PENDING_SINCE, OP_TRANSMITTED, OP_RECEIVE, OP_BUS_ERROR = range(5)
# bus.c: a PythonNode's copy of pending_since(); hears nothing; its next frame copied to C
KEEPS_READY_AT, DEAF, STAGED = 1, 2, 4

_CALL = ctypes.CFUNCTYPE(_U64, _U32, _U32, _U64, ctypes.c_void_p)
_DRAIN = ctypes.CFUNCTYPE(None)
_MACHINE_NEXT = ctypes.CFUNCTYPE(_U64, _U32)
_MACHINE_RUN = ctypes.CFUNCTYPE(None, _U32, _U32, _U64)
_ADVANCE_CLOCK = ctypes.CFUNCTYPE(None, _U64)


class _Machine(ctypes.Structure):
    _fields_ = [("uc", ctypes.c_void_p), ("ctx", ctypes.c_void_p), ("hz", _U64)]


class _Event(ctypes.Structure):
    _fields_ = [("at", _U64), ("when", _U64), ("seq", _U64)]


class BusState(ctypes.Structure):
    """Mirror of `can_bus` in bus.c."""

    _fields_ = [
        ("bitrate", _U64),
        ("data_bitrate", _U64),
        ("n_nodes", _U32),
        ("mcan", ctypes.c_void_p * MAX_NODES),
        ("python_flags", _U32 * MAX_NODES),
        ("ready_at", _U64 * MAX_NODES),
        ("staged", NativeFrame * MAX_NODES),
        ("call", _CALL),
        ("busy", _U32),
        ("sender", _U32),
        ("frame_start", _U64),
        ("arbitration", _Event),
        ("deliver", _Event),
        ("error", _Event),
        ("intermission", _Event),
        ("frame", NativeFrame),
        ("errors_to_inject", _U64),
        ("any_id", _U32),
        ("n_error_ids", _U32),
        ("error_ids", _U32 * MAX_ERROR_IDS),
        ("frames", _U64),
        ("errors", _U64),
        ("busy_ns", _U64),
        ("n_logged", _U32),
        ("logged", _U32 * LOG_SIZE),
        ("drain", _DRAIN),
        ("clock", ctypes.c_void_p),
    ]


class NetClockState(ctypes.Structure):
    """Mirror of `net_clock` in bus.c: the network clock's counter and native queue."""

    _fields_ = [
        *((name, _U64) for name in ("cycles", "deadline", "seq", "py_next_cycle", "py_next_seq",
                                    "native_next_cycle", "native_next_seq")),
        ("failed", _U32),
        ("stop", _U32),
        ("n_buses", _U32),
        ("buses", ctypes.c_void_p * MAX_BUSES),
        ("step_ns", _U64),
        ("n_machines", _U32),
        ("machines", _Machine * MAX_MACHINES),
        ("machine_next", _MACHINE_NEXT),
        ("machine_run", _MACHINE_RUN),
        ("advance_clock", _ADVANCE_CLOCK),
    ]  # fmt: skip


_bound: set[int] = set()


def _bind(lib: ctypes.CDLL) -> ctypes.CDLL:
    if id(lib) not in _bound:
        assert lib.bus_sizeof_bus() == ctypes.sizeof(BusState), "BusState differs from bus.c"
        assert lib.bus_sizeof_clock() == ctypes.sizeof(NetClockState), "net_clock != bus.c"
        ptr = ctypes.c_void_p
        for name, restype, argtypes in (
            ("bus_request", None, (ptr, _U64)),
            ("bus_fire_next", None, (ptr,)),
            ("bus_publish", None, (ptr,)),
            ("net_step", ctypes.c_int, (ptr, _U64)),
            ("net_advance", None, (ptr, _U64)),
        ):
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = restype, argtypes
        _bound.add(id(lib))
    return lib


@runtime_checkable
class NativeBusNode(Protocol):
    """A controller whose C side the native bus calls directly (NativeMcan)."""

    def join_native_bus(self, bus_address: int) -> int: ...

    def model_transmitted(self, frame: CanFrame) -> None: ...

    def model_receive(self, frame: CanFrame) -> None: ...


class LockstepMachine(Protocol):
    """What the native lockstep needs of a machine (harness.machine.Machine)."""

    @property
    def awake(self) -> bool: ...

    def next_event_ns(self) -> int | None: ...

    def native_lockstep(self) -> tuple[int, int, int] | None:
        """(Unicorn handle, native context address, clock hz); None: Python only."""

    def continue_native(self, result: int, target_ns: int) -> None: ...


class NativeNetClock:
    """A network's clock whose counter is the C `net_clock`, so native buses can queue
    their events on it; and the network's lockstep in C (`step`, `advance_to`)."""

    def __init__(self, hz: int) -> None:
        self.lib = _bind(native.library())
        self.state = NetClockState()
        s = self.state
        s.deadline = s.py_next_cycle = s.native_next_cycle = NEVER
        self.address = ctypes.addressof(s)
        self.error: BaseException | None = None
        self.clock = VirtualClock(hz, s, (s, self._fire))
        self.machines: list[LockstepMachine] = []
        self.lockstep = True  # every machine runs natively: the lockstep may run in C
        self._callbacks = (_MACHINE_NEXT(self._machine_next), _MACHINE_RUN(self._machine_run),
                           _ADVANCE_CLOCK(self._advance_clock))  # fmt: skip
        s.machine_next, s.machine_run, s.advance_clock = self._callbacks
        self._step = self._bind_step()

    def add_machine(self, machine: LockstepMachine) -> None:
        handles = machine.native_lockstep()
        if handles is None or len(self.machines) == MAX_MACHINES:
            self.lockstep = False  # the Python lockstep runs this network
            return
        s = self.state
        m = s.machines[s.n_machines]
        m.uc, m.ctx, m.hz = handles
        s.n_machines += 1
        self.machines.append(machine)

    def step(self, end_ns: int | None, step_ns: int) -> bool:
        """Network.step's native part: to the next moment something may happen, unless that
        is after `end_ns`; False if nothing can happen by then (time stays)."""
        self.state.step_ns = step_ns
        moved = self.lib.net_step(self.address, NEVER if end_ns is None else end_ns)
        self.raise_error()
        return bool(moved)

    def stepper(self, step_ns: int) -> Callable[[int], bool]:
        """`step` for a loop of many steps (Network.run_until): the same, with less Python
        per step."""
        self.state.step_ns = step_ns
        return self._step

    def _bind_step(self) -> Callable[[int], bool]:
        net_step, net_advance, address, state = (self.lib.net_step, self.lib.net_advance,
                                                 self.address, self.state)  # fmt: skip

        def step(end_ns: int) -> bool:
            if net_step(address, end_ns):
                if state.failed:
                    self.raise_error()
                return True
            self.raise_error()
            net_advance(address, end_ns)
            self.raise_error()
            return False

        return step

    def advance_to(self, end_ns: int, step_ns: int) -> None:
        self.state.step_ns = step_ns
        self.lib.net_advance(self.address, end_ns)
        self.raise_error()

    # ---- callbacks from C ----

    def _machine_next(self, index: int) -> int:
        try:
            machine = self.machines[index]
            if machine.awake:
                return int(self.state.cycles + self.state.step_ns)
            wake = machine.next_event_ns()
            return NEVER if wake is None else wake
        except BaseException as err:  # must not unwind through C: raised when C returns
            self.failed(err)
            return NEVER

    def _machine_run(self, index: int, result: int, target_ns: int) -> None:
        try:
            self.machines[index].continue_native(result, target_ns)
        except BaseException as err:  # must not unwind through C: raised when C returns
            self.failed(err)

    def _advance_clock(self, target_ns: int) -> None:
        try:
            self.clock.advance_to(target_ns)
        except BaseException as err:  # must not unwind through C: raised when C returns
            self.failed(err)

    def failed(self, err: BaseException) -> None:
        if self.error is None:
            self.error = err
        self.state.failed = 1

    def _fire(self) -> None:
        self.lib.bus_fire_next(self.address)
        self.raise_error()

    def raise_error(self) -> None:
        """Raise what a Python node raised under a call from C (it cannot unwind C)."""
        err, self.error = self.error, None
        if err is not None:
            self.state.failed = 0
            raise err

    def add(self, bus: BusState) -> None:
        s = self.state
        if s.n_buses == MAX_BUSES:
            raise ValueError(f"a network takes at most {MAX_BUSES} native CAN buses "
                             "(HARNESS_NATIVE=0 runs Python buses, without a limit)")  # fmt: skip
        s.buses[s.n_buses] = ctypes.addressof(bus)
        s.n_buses += 1


class NativeCanBus(CanBus):
    """A `CanBus` whose hot path is bus.c; every public attribute behaves as the reference's."""

    def __init__(self, name: str, net: NativeNetClock, bitrate: int = 500_000,
                 data_bitrate: int | None = None) -> None:  # fmt: skip
        super().__init__(name, net.clock, bitrate, data_bitrate)
        self._net = net
        self._lib = net.lib
        st = self._state = BusState()
        st.bitrate, st.data_bitrate = self.bitrate, self.data_bitrate
        for event in (st.arbitration, st.deliver, st.error, st.intermission):
            event.at = NEVER
        st.clock = net.address
        self._callbacks = (_CALL(self._call), _DRAIN(self._drain_from_c))
        st.call, st.drain = self._callbacks
        self._address = ctypes.addressof(st)
        self._delivered: tuple[int, CanFrame | None] = (0, None)
        self._python_nodes: dict[int, int] = {}  # id(PythonNode) -> its index on the bus
        self._staged: dict[int, NativeFrame] = {}  # a FIFO PythonNode's index -> its head in C
        self._ready_at = st.ready_at
        self._controllers: set[int] = set()  # indices of the nodes with a C side (M_CANs)
        net.add(st)

    # ---- the reference's interface ----

    @property
    def stats(self) -> BusStats:
        """The counts so far (one object, brought up to date on every read)."""
        self._drain()
        s, st = self._stats, self._state
        s.frames, s.errors, s.busy_ns = st.frames, st.errors, st.busy_ns
        return s

    @stats.setter
    def stats(self, value: BusStats) -> None:
        self._stats = value

    def attach(self, node: CanNode) -> None:
        if len(self.nodes) == MAX_NODES:
            raise ValueError(f"{self.name}: a native bus takes at most {MAX_NODES} nodes "
                             "(HARNESS_NATIVE=0 runs the Python bus, without a limit)")  # fmt: skip
        super().attach(node)
        # A controller already on another bus keeps asking that one through Python.
        st = self._state
        index = st.n_nodes
        if isinstance(node, NativeBusNode) and not getattr(node, "bus_request", None):
            st.mcan[index] = node.join_native_bus(self._address)
            self._controllers.add(index)
        elif type(node) is PythonNode:  # (a subclass may offer or hear otherwise: it is asked)
            fifo = node.tx_order == "fifo"
            st.python_flags[index] = (KEEPS_READY_AT | (STAGED if fifo else 0)
                                      | (0 if node.hears else DEAF))  # fmt: skip
            self._python_nodes[id(node)] = index
            if fifo:
                self._staged[index] = st.staged[index]
            self.pending_changed(node)
        st.n_nodes += 1

    def pending_changed(self, node: CanNode) -> None:
        index = self._python_nodes.get(id(node))
        if index is None:  # asked through Python every time
            return
        if (staged := self._staged.get(index)) is not None:  # a FIFO: its head, or nothing
            queue = node.queue  # type: ignore[attr-defined]  # a PythonNode
            if queue:
                at, frame = queue[0]
                staged.fill(frame)
                self._ready_at[index] = at
            else:
                self._ready_at[index] = NEVER
            return
        since = node.pending_since()
        self._ready_at[index] = NEVER if since is None else since

    def request(self, at_ns: int | None = None) -> None:
        self._lib.bus_request(self._address, self.clock.cycles if at_ns is None else at_ns)

    def inject_errors(self, count: int = 1, ids: Iterable[int] | None = None) -> None:
        keys = sorted(set(map(normalise, ids))) if ids is not None else None
        if keys is not None and len(keys) > MAX_ERROR_IDS:
            raise ValueError(f"{self.name}: at most {MAX_ERROR_IDS} IDs to destroy at once")
        st = self._state
        st.errors_to_inject += count
        st.any_id = keys is None
        st.n_error_ids = len(keys or ())
        st.error_ids[: len(keys or ())] = keys or []

    # ---- callbacks from C ----

    def _drain(self) -> None:
        st = self._state
        self._stats.per_id.update(st.logged[: st.n_logged])
        st.n_logged = 0

    def _drain_from_c(self) -> None:
        try:
            self._drain()
        except BaseException as err:  # must not unwind through C: raised when C returns
            self._failed(err)

    def _failed(self, err: BaseException) -> None:
        self._net.failed(err)

    def _call(self, index: int, op: int, arg: int, frame: Any) -> int:
        try:
            node = self.nodes[index]
            if op in (OP_TRANSMITTED, OP_RECEIVE):
                # One frame object per delivery, as the reference passes to every node (the
                # recorder tells the replayed frames by identity).
                number, delivered = self._delivered
                frames = self._state.frames
                if number != frames or delivered is None:
                    if op == OP_TRANSMITTED and index in self._staged:  # its queue's head
                        head = node.queue[0][1]  # type: ignore[attr-defined]  # a PythonNode
                        delivered = head.stamped(_U64.from_address(frame).value, self.name)
                    else:
                        delivered = NativeFrame.from_address(frame).frame(self.name)
                    self._delivered = (frames, delivered)
                if index in self._controllers:  # the controller's C side declined it
                    assert isinstance(node, NativeBusNode)
                    if op == OP_TRANSMITTED:
                        node.model_transmitted(delivered)
                    else:
                        node.model_receive(delivered)
                elif op == OP_TRANSMITTED:
                    node.transmitted(delivered)
                else:
                    node.receive(delivered)
            elif op == OP_OFFER:
                offered = node.offer(arg)
                if offered is None:
                    return 0
                NativeFrame.from_address(frame).fill(offered)
                return 1
            elif op == OP_PENDING_SINCE:
                since = node.pending_since()
                return NEVER if since is None else since
            else:  # OP_BUS_ERROR
                node.bus_error(transmitting=bool(arg))
        except BaseException as err:  # must not unwind through C: raised when C returns
            self._failed(err)
        return 0
