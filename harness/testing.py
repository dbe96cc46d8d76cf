"""Test helpers in virtual time: send DBC messages by name, expect the ECU's answers."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping
from typing import Any

from harness.dbc import Dbc, Decoded
from harness.e2e.config import from_dbc
from harness.e2e.profiles import Profile
from harness.e2e.state import E2ESender
from harness.errors import VirtualTimeout
from harness.network import CanFrame, Network, PythonNode

Condition = Any  # a value to equal, or a predicate on the decoded value


class CanTester:
    """A tester node on one bus that speaks the DBC.

    `send` protects E2E messages (the DBC's `E2EProfile` attributes, or `e2e`) with a running
    counter and the right CRC; `send_frame` sends a frame exactly as given (for faults).
    `expect` and friends advance the network's virtual time; they never wait in wall time.
    """

    def __init__(self, network: Network, dbc: Dbc, bus: str = "can0",
                 e2e: Mapping[str, Profile] | None = None) -> None:  # fmt: skip
        self.network = network
        self.dbc = dbc
        self.node = PythonNode("tester", network.bus(bus))
        self.e2e = E2ESender(from_dbc(dbc) if e2e is None else e2e)

    def send(self, name: str, **signals: Any) -> None:
        frame = self.dbc.encode(name, **signals)
        self.send_frame(dataclasses.replace(frame, data=self.e2e.protect(name, frame.data)))

    def send_frame(self, frame: CanFrame) -> None:
        self.node.send(frame)

    def received(self, name: str | None = None, since_ns: int = 0) -> list[Decoded]:
        out = []
        for frame in self.node.received:
            if frame.timestamp_ns < since_ns:
                continue
            decoded = self.dbc.decode(frame)
            if decoded is not None and (name is None or decoded.name == name):
                out.append(decoded)
        return out

    def expect(self, name: str, *, within_ms: float, **conditions: Condition) -> Decoded:
        """The first `name` frame from now on whose signals meet `conditions`."""
        self.dbc.message(name)  # unknown names fail here, clearly
        start = self.network.now_ns

        def found() -> Decoded | None:
            for d in self.received(name, start):
                if _meets(d, conditions):
                    return d
            return None

        try:
            self.network.run_until(lambda: found() is not None, timeout_ms=within_ms)
        except VirtualTimeout:
            raise AssertionError(self._missing(name, conditions, start, within_ms)) from None
        result = found()
        assert result is not None
        return result

    def expect_cycle(self, name: str, period_ms: float, *, tolerance_ms: float,
                     count: int = 5) -> list[float]:  # fmt: skip
        """`count` consecutive `name` frames, each `period_ms` +- `tolerance_ms` apart."""
        start = self.network.now_ns
        deadline_ms = period_ms * (count + 1) + tolerance_ms
        try:
            self.network.run_until(lambda: len(self.received(name, start)) > count,
                                   timeout_ms=deadline_ms)  # fmt: skip
        except VirtualTimeout:
            seen = len(self.received(name, start))
            raise AssertionError(
                f"{name}: {seen} frames in {deadline_ms:g} ms, expected "
                f"{count + 1} (one every {period_ms:g} ms)"
            ) from None
        stamps = [d.timestamp_ns / 1e6 for d in self.received(name, start)][: count + 1]
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        wrong = [g for g in gaps if abs(g - period_ms) > tolerance_ms]
        if wrong:
            shown = ", ".join(f"{g:.3f}" for g in gaps)
            raise AssertionError(f"{name}: periods {shown} ms; expected {period_ms:g} "
                                 f"+- {tolerance_ms:g} ms")  # fmt: skip
        return gaps

    def expect_silence(self, name: str, *, for_ms: float) -> None:
        """No `name` frame for `for_ms` of virtual time from now."""
        start = self.network.now_ns
        self.network.run_for(ms=for_ms)
        seen = self.received(name, start)
        if seen:
            first = seen[0]
            raise AssertionError(f"{name} was sent at {first.timestamp_ns / 1e6:.3f} ms, during "
                                 f"{for_ms:g} ms that should have been silent: "
                                 f"{_describe(first)}")  # fmt: skip

    def _missing(self, name: str, conditions: dict[str, Condition], start: int,
                 within_ms: float) -> str:  # fmt: skip
        wanted = ", ".join(f"{k}={_show(v)}" for k, v in conditions.items()) or "any content"
        seen = self.received(name, start)
        window = f"{start / 1e6:.3f}-{self.network.now_ns / 1e6:.3f} ms"
        if not seen:
            others = sorted({d.name for d in self.received(None, start)})
            return (f"no {name} within {within_ms:g} ms ({window}); wanted {wanted}; "
                    f"other messages seen: {', '.join(others) or 'none'}")  # fmt: skip
        last = "\n  ".join(f"{d.timestamp_ns / 1e6:.3f} ms: {_describe(d)}" for d in seen[-5:])
        return (f"{name} with {wanted} not seen within {within_ms:g} ms ({window}); "
                f"{len(seen)} {name} frames seen instead, the last:\n  {last}")  # fmt: skip


def _meets(decoded: Decoded, conditions: dict[str, Condition]) -> bool:
    if decoded.problem is not None:
        return False  # a frame the DBC cannot decode meets no condition on its signals
    for signal, expected in conditions.items():
        if signal not in decoded.signals:
            raise AssertionError(f"{decoded.name} has no signal {signal!r}; its signals: "
                                 f"{', '.join(decoded.signals)}")  # fmt: skip
        if not meets(decoded.signals[signal], expected):
            return False
    return True


def meets(value: Any, expected: Condition) -> bool:
    """A decoded signal value meets a condition: a predicate, a number (floats within
    rounding), or a value to equal (a value-table name)."""
    if callable(expected):
        return bool(expected(value))
    if isinstance(expected, float) or isinstance(value, float):
        return (isinstance(value, int | float) and isinstance(expected, int | float)
                and math.isclose(value, expected, rel_tol=1e-9, abs_tol=1e-6))  # fmt: skip
    return bool(value == expected)


def _show(value: Condition) -> str:
    return "<predicate>" if callable(value) else repr(value)


def _describe(decoded: Decoded) -> str:
    return ", ".join(f"{k}={v}" for k, v in decoded.signals.items())
