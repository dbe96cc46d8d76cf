"""DBC messages by name: encode signal values into frames, decode frames into signals.

A thin layer over cantools that speaks the harness's `CanFrame` and reports mistakes
clearly: the file and line of a bad DBC, an unknown message (with the closest names), an
unknown signal (with the message's signals), a value outside the signal's range.
"""

from __future__ import annotations

import difflib
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cantools
from cantools.database.can import Database, Message
from cantools.database.errors import Error as CantoolsError
from cantools.database.namedsignalvalue import NamedSignalValue

from harness.errors import HarnessError
from harness.network.frames import FD_LENGTHS, CanFrame
from harness.network.ids import id_key
from harness.paths import bundled

PROJECT_DBC = bundled("dbc") / "exterior_light.dbc"  # checkout top level, or in the package


class DbcError(HarnessError):
    """A DBC file that cannot be used, or a message / signal / value it does not allow."""


log = logging.getLogger(__name__)

@dataclass(frozen=True, slots=True)
class Decoded:
    name: str
    signals: dict[str, Any]  # physical values; value-table entries as their names
    timestamp_ns: int
    frame: CanFrame
    # Why the signals could not be decoded (e.g. a multiplexer value the DBC does not
    # describe); the frame then has no signals and is compared by its raw bytes.
    problem: str | None = None


class Dbc:
    """One communication matrix."""

    def __init__(self, database: Database, source: str = "<database>") -> None:
        self.database = database
        self.source = source
        self._undecodable: set[str] = set()  # messages already reported as undecodable
        self._by_id = {(m.frame_id, bool(m.is_extended_frame)): m for m in database.messages}

    @classmethod
    def load(cls, path: str | Path = PROJECT_DBC) -> Dbc:
        path = Path(path)
        try:
            database = cantools.database.load_file(str(path), database_format="dbc")
        except OSError as err:
            raise DbcError(f"{path}: cannot read: {err.strerror}") from err
        except (CantoolsError, ValueError, ArithmeticError) as err:
            raise DbcError(f"{path}: not a valid DBC: {err}") from err
        if not isinstance(database, Database):
            raise DbcError(f"{path}: not a CAN database")
        _check_every_definition_loaded(path, database)
        return cls(database, str(path))

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.database.messages]

    def sent_by(self, node: str) -> frozenset[int]:
        """The IDs of every message `node` transmits, as keys of `harness.network.ids`
        (an extended ID carries its flag, so 0x600 and 0x600x stay apart)."""
        nodes = {n.name for n in self.database.nodes}
        if node not in nodes:
            raise DbcError(f"{self.source}: no node named {node!r} "
                           f"(nodes: {', '.join(sorted(nodes))})")  # fmt: skip
        return frozenset(id_key(m.frame_id, m.is_extended_frame)
                         for m in self.database.messages if node in m.senders)  # fmt: skip

    def message(self, name: str) -> Message:
        try:
            return self.database.get_message_by_name(name)
        except KeyError:
            close = difflib.get_close_matches(name, self.names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise DbcError(f"{self.source}: no message named {name!r}{hint}") from None

    def encode(self, name: str, **signals: Any) -> CanFrame:
        """A frame for message `name`; signals not given take their start value (or 0, or the
        value nearest 0 that the signal allows; a multiplexer its first page)."""
        message = self.message(name)
        length = self._frame_length(message)
        values = self._complete(message, signals)
        try:
            data = message.encode(values, strict=True, padding=False)
        except (CantoolsError, ValueError, KeyError, ArithmeticError) as err:
            # ArithmeticError: cantools' OverflowError for a raw value its field cannot hold
            raise DbcError(f"{name}: {self._explain(message, values, signals, err)}") from err
        return CanFrame(
            message.frame_id,
            bytes(data).ljust(length, b"\x00"),
            is_extended=message.is_extended_frame,
            is_fd=message.is_fd,
            brs=message.is_fd and self._brs(message),
        )

    def decode(self, frame: CanFrame, choices: bool = True) -> Decoded | None:
        """The frame's signals, or None for an ID the DBC does not know (kept raw).
        Value-table signals decode to their names; with `choices=False`, to their numbers."""
        # By ID and ID kind: an extended ID of 0x7FF or less is not a standard one (cantools'
        # own lookup takes it for one), and a DBC may hold both with the same number.
        message = self._by_id.get((frame.arbitration_id, frame.is_extended))
        if message is None:
            return None
        try:
            signals = message.decode(frame.data, decode_choices=choices, allow_truncated=True)
        except (CantoolsError, ValueError) as err:
            problem = f"{message.name}: cannot decode {frame.data.hex() or 'no data'}: {err}"
            if message.name not in self._undecodable:  # say it once per message, never fatal
                self._undecodable.add(message.name)
                log.warning("%s (%s); such frames are kept raw", problem, self.source)
            return Decoded(message.name, {}, frame.timestamp_ns, frame, problem)
        named: dict[str, Any] = {
            str(k): str(v) if isinstance(v, NamedSignalValue) else v
            for k, v in dict(signals).items()
        }
        return Decoded(message.name, named, frame.timestamp_ns, frame)

    # ---- helpers ----

    def _frame_length(self, message: Message) -> int:
        """The frame's data length: the DBC's, or for CAN FD the next length FD can carry."""
        length: int = message.length
        if message.is_fd:
            fitting = [n for n in FD_LENGTHS if n >= length]
            if not fitting:
                raise DbcError(f"{self.source}: {message.name} is {length} bytes long; a CAN FD "
                               f"frame carries at most 64")  # fmt: skip
            return fitting[0]
        if length > 8:
            raise DbcError(f"{self.source}: {message.name} is {length} bytes long, more than a "
                           f"classic CAN frame carries (8), and the DBC does not make it a CAN "
                           f"FD frame (VFrameFormat)")  # fmt: skip
        return length

    def _complete(self, message: Message, given: Mapping[str, Any]) -> dict[str, Any]:
        known = {s.name: s for s in message.signals}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise DbcError(f"{message.name} has no signal {', '.join(unknown)}; "
                           f"its signals: {', '.join(known)}")  # fmt: skip
        chosen: dict[str, Any] = {}  # every signal's value, active or not: muxes select by it

        def value(signal: Any) -> Any:
            if signal.name not in chosen:
                chosen[signal.name] = self._given_or_default(message, signal, given)
            return chosen[signal.name]

        def active(signal: Any) -> bool:
            if signal.multiplexer_ids is None:
                return True
            mux = known.get(signal.multiplexer_signal or "")
            if mux is None:
                return False
            return active(mux) and _number(mux, value(mux)) in signal.multiplexer_ids

        # A signal given for a page not selected stays in: cantools then names the mistake.
        return {s.name: value(s) for s in message.signals if s.name in given or active(s)}

    def _given_or_default(self, message: Message, signal: Any, given: Mapping[str, Any]) -> Any:
        if signal.name not in given:
            return self._default(message, signal)
        value = given[signal.name]
        if isinstance(value, str):
            if not signal.choices:
                raise DbcError(
                    f"{message.name}.{signal.name}: {value!r} is a value name, but the "
                    "signal has no value table; give a number"
                )
            self._choice(message, signal.name, signal.choices, value)
        return value  # a name stays a name: cantools turns it into its raw value

    @staticmethod
    def _choice(message: Message, signal: str, choices: Mapping[int, Any], name: str) -> int:
        for raw, label in choices.items():
            if str(label) == name:
                return raw
        labels = ", ".join(str(v) for v in choices.values())
        raise DbcError(f"{message.name}.{signal}: no value named {name!r}; values: {labels}")

    @staticmethod
    def _default(message: Message, signal: Any) -> Any:
        """The DBC's start value, else the value nearest 0 in the signal's range and its raw
        field; a multiplexer whose value selects no page takes its first page."""
        initial = signal.initial
        if isinstance(initial, NamedSignalValue):
            value: Any = str(initial)  # a start value with a name in the value table
        elif initial is not None:
            value = float(initial)
        else:
            low, high = _allowed(signal)
            value = min(max(0, low), high) if low <= high else 0
        if signal.is_multiplexer:
            pages = sorted({page for s in message.signals
                            if s.multiplexer_signal == signal.name
                            for page in s.multiplexer_ids or ()})  # fmt: skip
            if pages and _number(signal, value) not in pages:
                value = pages[0]
        return value

    @staticmethod
    def _explain(
        message: Message, values: Mapping[str, Any], given: Mapping[str, Any], err: Exception
    ) -> str:
        for signal in message.signals:
            value = values.get(signal.name)
            unit = f" {signal.unit}" if signal.unit else ""
            start = "" if signal.name in given else " (the DBC's start value; give it a value)"
            fits = _raw_limits(signal)
            kind = f"{signal.length}-bit {'signed' if signal.is_signed else 'unsigned'} field"
            if isinstance(value, str):  # a value-table name: its raw value must fit the field
                raw = _number(signal, value)
                if fits is not None and isinstance(raw, int) and not fits[0] <= raw <= fits[1]:
                    return (f"{signal.name}={value!r} is {raw} in the value table, which its "
                            f"{kind} cannot hold ({fits[0]}..{fits[1]}){start}")  # fmt: skip
                continue
            if not isinstance(value, int | float):
                continue
            raw = _raw_value(signal, value)
            in_table = raw in (signal.choices or {})
            if not in_table and (  # cantools does not check a value-table value's range
                (signal.minimum is not None and value < signal.minimum)
                or (signal.maximum is not None and value > signal.maximum)
            ):
                return (f"{signal.name}={value}{unit} is outside "
                        f"{signal.minimum}..{signal.maximum}{unit}{start}")  # fmt: skip
            if fits is not None and raw is not None and not fits[0] <= raw <= fits[1]:
                low, high = _physical(signal, fits)
                return (f"{signal.name}={value}{unit} does not fit its {kind}, which holds "
                        f"{low:g}..{high:g}{unit}{start}")  # fmt: skip
        return str(err)

    def _brs(self, message: Message) -> bool:
        attributes = message.dbc.attributes if message.dbc else {}
        if "CANFD_BRS" in attributes:
            return str(attributes["CANFD_BRS"].value) == "1"
        definitions = self.database.dbc.attribute_definitions if self.database.dbc else {}
        definition = definitions.get("CANFD_BRS")
        return definition is None or str(definition.default_value) == "1"


def _number(signal: Any, value: Any) -> Any:
    """A value as a number: a value-table name as its raw value (what pages are keyed by)."""
    if isinstance(value, str):
        for raw, label in (signal.choices or {}).items():
            if str(label) == value:
                return raw
    return value


def _raw_limits(signal: Any) -> tuple[int, int] | None:
    """The raw values the signal's bit field holds (None for floats)."""
    if signal.is_float:
        return None
    if signal.is_signed:
        return -(1 << (signal.length - 1)), (1 << (signal.length - 1)) - 1
    return 0, (1 << signal.length) - 1


def _physical(signal: Any, raw: tuple[int, int]) -> tuple[float, float]:
    ends = [r * signal.scale + signal.offset for r in raw]
    return min(ends), max(ends)


def _raw_value(signal: Any, value: float) -> int | None:
    if signal.is_float or not signal.scale:
        return None
    return round(float(value - signal.offset) / float(signal.scale))


def _allowed(signal: Any) -> tuple[float, float]:
    """The physical values the signal takes: its range, within what its raw field holds."""
    low = signal.minimum if signal.minimum is not None else -math.inf
    high = signal.maximum if signal.maximum is not None else math.inf
    raw = _raw_limits(signal)
    if raw is not None:
        field_low, field_high = _physical(signal, raw)
        low, high = max(low, field_low), min(high, field_high)
    return low, high


_BO = re.compile(r"BO_\s+(\d+)\s+(\w+)\s*:\s*\d+\s+\w+")
_SG = re.compile(r"\s+SG_\s+(\w+)\s")
# Vector's container for signals that belong to no message: cantools leaves it out, rightly.
_PSEUDO_MESSAGES = {"VECTOR__INDEPENDENT_SIG_MSG"}


# Names longer than 32 characters: the BO_ / SG_ line holds a short name, these attributes the
# real one, which is the name cantools gives the message or signal.
_LONG_MESSAGE = re.compile(r'^BA_\s+"SystemMessageLongSymbol"\s+BO_\s+(\d+)\s+"([^"]+)"', re.M)
_LONG_SIGNAL = re.compile(
    r'^BA_\s+"SystemSignalLongSymbol"\s+SG_\s+(\d+)\s+(\w+)\s+"([^"]+)"', re.M
)


def _check_every_definition_loaded(path: Path, database: Database) -> None:
    """cantools skips a message or signal it cannot parse (a file cut mid-line, say) without a
    word: every BO_ and SG_ line of the file must have become a message or a signal (under
    its long name, if the file gives one)."""
    loaded = {m.name: {s.name for s in m.signals} for m in database.messages}
    message: str | None = None
    frame_id = ""
    text = path.read_text(encoding="cp1252", errors="replace")  # cantools' default encoding
    long_messages = {m.group(1): m.group(2) for m in _LONG_MESSAGE.finditer(text)}
    long_signals = {(m.group(1), m.group(2)): m.group(3) for m in _LONG_SIGNAL.finditer(text)}
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("BO_ "):
            found = _BO.match(line)
            if found is None:
                raise DbcError(f"{path}: line {number}: message definition not understood "
                               f"(cut short?): {line.strip()!r}")  # fmt: skip
            frame_id = found.group(1)
            message = long_messages.get(frame_id, found.group(2))
            if message not in loaded and message not in _PSEUDO_MESSAGES:
                raise DbcError(f"{path}: line {number}: message {message} did not load")
        elif line.lstrip().startswith("SG_ ") and message is not None:
            signal = _SG.match(line)
            if message in _PSEUDO_MESSAGES:
                continue
            name = None if signal is None else long_signals.get((frame_id, signal.group(1)),
                                                                signal.group(1))  # fmt: skip
            if name not in loaded[message]:
                raise DbcError(f"{path}: line {number}: signal of {message} did not load: "
                               f"{line.strip()!r}")  # fmt: skip
        elif line.strip():
            message = None if not line.startswith((" ", "\t")) else message
