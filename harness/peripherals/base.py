"""What every memory-mapped peripheral model shares: registers, reset, snapshots."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Protocol

from harness.clock import Deadline, VirtualClock
from harness.regs.dsl import Block, RegisterFile

# What a peripheral's logs for tests (pin events, UART output) keep at least: the latest
# entries, so that an hour-long run stays in flat memory.
LOG_LIMIT = 100_000


def keep_recent(log: list[Any]) -> None:
    """Drop a log's oldest entries once it holds twice LOG_LIMIT (amortised: a log stays a
    plain list, which tests index and slice)."""
    if len(log) > 2 * LOG_LIMIT:
        del log[:-LOG_LIMIT]


class IrqLine(Protocol):
    def set(self, level: bool) -> None: ...


class Peripheral:
    """A register block at `base`. Subclasses set `block`, hook registers and keep the
    names of any extra plain-data state in `extra_state` so snapshots include it."""

    block: ClassVar[Block]
    extra_state: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str, base: int, clock: VirtualClock) -> None:
        self.name = name
        self.base = base
        self.clock = clock
        self.regs = RegisterFile(self.block, name)
        self._deadlines: list[Deadline] = []

    @property
    def size(self) -> int:
        return self.block.size

    def deadline(self, callback: Callable[[], None]) -> Deadline:
        d = self.clock.deadline(callback)
        self._deadlines.append(d)
        return d

    def read(self, offset: int, size: int) -> int:
        return self.regs.read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        self.regs.write(offset, value, size)

    def reset(self) -> None:
        self.regs.reset()
        for d in self._deadlines:
            d.disarm()

    def snapshot(self) -> Any:
        return (
            {name: list(v) for name, v in self.regs.values.items()},
            [d.state() for d in self._deadlines],
            {k: _copy(getattr(self, k)) for k in self.extra_state},
        )

    def restore(self, state: Any) -> None:
        values, deadlines, extra = state
        for name, v in values.items():
            self.regs.values[name][:] = v  # in place: a native model's values are views
        for d, s in zip(self._deadlines, deadlines, strict=True):
            d.restore(s)
        for k, v in extra.items():
            setattr(self, k, _copy(v))


def _copy(value: Any) -> Any:
    """Copy one level: peripheral state is ints and containers of immutable values."""
    if isinstance(value, list | dict | set):
        return type(value)(value)
    return value
