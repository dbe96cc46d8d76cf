"""How a machine's controllers join a network: the contract, not the models.

The peripheral models never import the network; they satisfy these protocols by shape. The
network attaches a `CanPort` to a CAN bus and a `LinPort` to a LIN bus, and runs machines
through `Lockstep` alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from harness.frames.lin import LineSymbol
from harness.network.can import CanNode


@runtime_checkable
class CanPort(CanNode, Protocol):
    """A machine's CAN controller, as a bus sees it."""

    # the bus's request(at_ns), called when the controller has a frame waiting
    bus_request: list[Callable[[int], None]]
    # (bus name, nominal, data bit rate), once attached: its bit timing must match
    bus_rates: tuple[str, int, int] | None

    @property
    def initialising(self) -> bool:
        """In INIT (or bus-off): not taking part in bus traffic."""


@runtime_checkable
class LinPort(Protocol):
    """A machine's LIN-capable UART, as a LIN bus sees it."""

    name: str
    # the bus's transmit(sender, character), once attached: the port drives the wire with it
    lin_transmit: list[Callable[[str, LineSymbol], None]]
    lin_bitrate: int | None  # the bus's bit rate, once attached: the port's baud must match

    def lin_received(self, symbol: LineSymbol) -> None:
        """A character has ended on the wire (the port's own ones too: the readback)."""


class Lockstep(Protocol):
    """What the network needs of a machine to run it in lockstep with its buses."""

    @property
    def now_ns(self) -> int: ...

    @property
    def awake(self) -> bool:
        """Running code, or about to: it may ask to send at any moment."""

    def next_event_ns(self) -> int | None:
        """While asleep: when it next has something to do (ns); None: nothing scheduled."""

    def run_to_ns(self, target_ns: int) -> None: ...
