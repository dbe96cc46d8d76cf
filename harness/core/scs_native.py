"""The NVIC and SysTick with their state in C (native.c), for the native exception path.

`NativeNvic` and `NativeSysTick` are the Python models (nvic.py, systick.py) whose state lives
in one C struct (`scs_state`), so that the native run loop (`harness_advance`) can decide,
enter and retire exceptions and fire SysTick without a Python frame. Register accesses stay
in the Python models, on the same state; the decisions (`highest_pending`,
`exception_to_take`, ...) are the C ones, which tests/test_scs_native.py holds to the Python
reference on random states. `HARNESS_NATIVE=0` builds the plain Python models instead.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any, ClassVar

from harness.clock import NEVER, VirtualClock
from harness.core.native import NativeContext
from harness.core.nvic import FIRST_IRQ, Nvic
from harness.core.systick import SysTick

_U32, _U64 = ctypes.c_uint32, ctypes.c_uint64
EXCEPTIONS = 256  # native.c's SCS_EXCEPTIONS
WORDS = EXCEPTIONS // 32


class ScsState(ctypes.Structure):
    """Mirror of `scs_state` in native.c."""

    _fields_ = [
        ("enabled", _U32 * WORDS),
        ("pending", _U32 * WORDS),
        ("lines", _U32 * WORDS),
        ("prio", ctypes.c_int32 * EXCEPTIONS),
        ("active", _U32 * EXCEPTIONS),
        ("n_active", _U32),
        ("prigroup", _U32),
        ("vtor", _U32),
        ("num_irqs", _U32),
        ("changed", _U32),
        ("systick", _U32 * 4),
        ("systick_at", _U64),
        ("systick_when", _U64),
        ("systick_seq", _U64),
        ("systick_due", _U64),
    ]


_bound: set[int] = set()


def _bind(lib: ctypes.CDLL) -> ctypes.CDLL:
    if id(lib) in _bound:
        return lib
    assert lib.harness_sizeof_scs() == ctypes.sizeof(ScsState), "ScsState differs from native.c"
    ptr, u32, i32 = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int32
    for name, restype, argtypes in (
        ("scs_execution_priority", i32, (ptr, u32, u32, u32)),
        ("scs_highest_pending", i32, (ptr,)),
        ("scs_exception_to_take", i32, (ptr, u32, u32, u32)),
        ("scs_pend", None, (ptr, u32)),
        ("scs_set_line", None, (ptr, u32, u32)),
        ("scs_activate", None, (ptr, u32)),
        ("scs_returned", None, (ptr,)),
        ("scs_systick_arm", None, (ptr, _U64)),
        ("scs_systick_disarm", None, (ptr,)),
        ("harness_fire_native", None, (ptr,)),
        ("harness_publish_native", None, (ptr,)),
        ("harness_advance", ctypes.c_int, (ptr, ptr, _U64)),
    ):
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    _bound.add(id(lib))
    return lib


def _to_int(words: ctypes.Array[Any]) -> int:
    return int.from_bytes(bytes(words), "little")


def _put_int(words: ctypes.Array[Any], value: int) -> None:
    words[:] = [(value >> (32 * i)) & 0xFFFFFFFF for i in range(WORDS)]


def _mask_property(field: str) -> property:
    """A bit mask of the Python model (an int), kept as words in C."""

    def get(self: NativeNvic) -> int:
        return _to_int(getattr(self._scs, field))

    def put(self: NativeNvic, value: int) -> None:
        _put_int(getattr(self._scs, field), value)

    return property(get, put)


def _register_views(regs: Any, scs: ScsState, field: str, names: tuple[str, ...]) -> None:
    """Point the register file's storage of `names` at consecutive words of `scs.field`."""
    base = ctypes.addressof(scs) + getattr(ScsState, field).offset
    for i, name in enumerate(names):
        view = (_U32 * 1).from_address(base + 4 * i)
        view[0] = regs.values[name][0]
        regs.values[name] = view


class NativeScs:
    """The C state of one machine's system control space, attached to its CPU context."""

    def __init__(self, lib: ctypes.CDLL, ctx: NativeContext, num_irqs: int) -> None:
        self.lib = _bind(lib)
        self.ctx = ctx
        self.ctxp = ctypes.byref(ctx)
        self.state = ScsState()
        self.state.num_irqs = num_irqs
        self.state.systick_at = NEVER
        self.statep = ctypes.byref(self.state)
        ctx.scs = ctypes.addressof(self.state)


class NativeNvic(Nvic):
    """The NVIC model on the C state; its decisions are native.c's."""

    # "priorities": a copy of the C array (`prio` is a live view, which a snapshot must not keep)
    extra_state: ClassVar[tuple[str, ...]] = (
        "enabled", "pending", "active", "priorities", "lines", "prigroup",
    )  # fmt: skip

    def __init__(
        self,
        name: str,
        base: int,
        clock: VirtualClock,
        scs: NativeScs,
        request_reset: Callable[[], None],
        sync_returns: Callable[[], None],
    ) -> None:
        self._native = scs
        self._scs = scs.state
        self._p = scs.statep
        self._lib = scs.lib
        super().__init__(name, base, clock, scs.state.num_irqs, self._changed, request_reset,
                         sync_returns)  # fmt: skip
        _register_views(self.regs, self._scs, "vtor", ("VTOR",))

    def _changed(self) -> None:
        self._scs.changed = 1  # a running core stops at the next block for the native loop

    enabled = _mask_property("enabled")
    pending = _mask_property("pending")
    lines = _mask_property("lines")

    @property
    def active(self) -> list[int]:
        return list(self._scs.active[: self._scs.n_active])

    @active.setter
    def active(self, value: list[int]) -> None:
        self._scs.n_active = len(value)
        self._scs.active[: len(value)] = value

    @property
    def prio(self) -> Any:
        """Priorities by exception number: a live view (item assignment writes the C state)."""
        return (ctypes.c_int32 * (FIRST_IRQ + self.num_irqs)).from_buffer(self._scs.prio)

    @prio.setter
    def prio(self, value: list[int]) -> None:
        self.prio[:] = value

    @property
    def priorities(self) -> list[int]:
        return list(self.prio)

    @priorities.setter
    def priorities(self, value: list[int]) -> None:
        self.prio[:] = value

    @property
    def prigroup(self) -> int:
        return int(self._scs.prigroup)

    @prigroup.setter
    def prigroup(self, value: int) -> None:
        self._scs.prigroup = value

    def native_address(self) -> int | None:
        return ctypes.addressof(self._scs)

    def has_pending(self) -> bool:
        return any(self._scs.pending)

    def set_line(self, irq: int, level: bool) -> None:
        self._lib.scs_set_line(self._p, irq, int(level))

    def pend(self, exc: int) -> None:
        self._lib.scs_pend(self._p, exc)

    def activate(self, exc: int) -> None:
        self._lib.scs_activate(self._p, exc)

    def exception_returned(self) -> None:
        self._lib.scs_returned(self._p)

    def execution_priority(self, primask: int, basepri: int, faultmask: int) -> int:
        return int(self._lib.scs_execution_priority(self._p, primask, basepri, faultmask))

    def highest_pending(self) -> int | None:
        exc = int(self._lib.scs_highest_pending(self._p))
        return None if exc < 0 else exc

    def exception_to_take(self, primask: int, basepri: int, faultmask: int) -> int | None:
        exc = int(self._lib.scs_exception_to_take(self._p, primask, basepri, faultmask))
        return None if exc < 0 else exc


class NativeDeadline:
    """SysTick's reload deadline, queued in C (a `clock.Deadline` with the same interface)."""

    def __init__(self, clock: VirtualClock, scs: NativeScs) -> None:
        self._clock = clock
        self._native = scs
        self._s = scs.state

    @property
    def at(self) -> int | None:
        at = int(self._s.systick_at)
        return None if at == NEVER else at

    @property
    def due(self) -> int:
        return int(self._s.systick_due)

    def arm_at(self, cycle: int) -> None:
        self._native.lib.scs_systick_arm(self._native.ctxp, cycle)

    def arm_in(self, cycles: int) -> None:
        self.arm_at(self._clock.cycles + cycles)

    def disarm(self) -> None:
        self._native.lib.scs_systick_disarm(self._native.ctxp)

    def state(self) -> tuple[int, int, int, int]:
        s = self._s
        return s.systick_at, s.systick_when, s.systick_seq, s.systick_due

    def restore(self, state: tuple[int, int, int, int]) -> None:
        s = self._s
        s.systick_at, s.systick_when, s.systick_seq, s.systick_due = state
        self._native.lib.harness_publish_native(self._native.ctxp)


class NativeSysTick(SysTick):
    """The SysTick model whose registers and reload deadline live in C: the native loop
    fires it (COUNTFLAG, reload, the SysTick exception) without Python."""

    def __init__(self, name: str, base: int, clock: VirtualClock, scs: NativeScs) -> None:
        super().__init__(name, base, clock, lambda: None)  # the C side pends the exception
        self._deadlines.remove(self._zero)
        self._zero = NativeDeadline(clock, scs)  # type: ignore[assignment]
        self._deadlines.append(self._zero)
        _register_views(self.regs, scs.state, "systick", ("CSR", "RVR", "CVR", "CALIB"))
