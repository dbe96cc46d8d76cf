"""DBC messages by name: encode signal values into frames, decode frames into signals.

A thin layer over cantools that speaks the harness's `CanFrame` and reports mistakes
clearly: the file and line of a bad DBC, an unknown message (with the closest names), an
unknown signal (with the message's signals), a value outside the signal's range.
"""

from __future__ import annotations

import difflib
import logging
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
from harness.network.frames import CanFrame
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
        """The IDs of every message `node` transmits."""
        nodes = {n.name for n in self.database.nodes}
        if node not in nodes:
            raise DbcError(f"{self.source}: no node named {node!r} "
                           f"(nodes: {', '.join(sorted(nodes))})")  # fmt: skip
        return frozenset(m.frame_id for m in self.database.messages if node in m.senders)

    def message(self, name: str) -> Message:
        try:
            return self.database.get_message_by_name(name)
        except KeyError:
            close = difflib.get_close_matches(name, self.names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise DbcError(f"{self.source}: no message named {name!r}{hint}") from None

    def encode(self, name: str, **signals: Any) -> CanFrame:
        """A frame for message `name`; signals not given take their start value (or 0)."""
        message = self.message(name)
        values = self._complete(message, signals)
        try:
            data = message.encode(values, strict=True, padding=False)
        except (CantoolsError, ValueError, KeyError) as err:
            raise DbcError(f"{name}: {self._explain(message, values, err)}") from err
        return CanFrame(
            message.frame_id,
            bytes(data).ljust(message.length, b"\x00"),
            is_extended=message.is_extended_frame,
            is_fd=message.is_fd,
            brs=message.is_fd and self._brs(message),
        )

    def decode(self, frame: CanFrame, choices: bool = True) -> Decoded | None:
        """The frame's signals, or None for an ID the DBC does not know (kept raw).
        Value-table signals decode to their names; with `choices=False`, to their numbers."""
        try:
            message = self.database.get_message_by_frame_id(frame.arbitration_id)
        except KeyError:
            return None
        if message.is_extended_frame != frame.is_extended:
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

    def _complete(self, message: Message, given: Mapping[str, Any]) -> dict[str, Any]:
        known = {s.name: s for s in message.signals}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise DbcError(f"{message.name} has no signal {', '.join(unknown)}; "
                           f"its signals: {', '.join(known)}")  # fmt: skip
        values: dict[str, Any] = {}
        for signal in message.signals:
            if signal.name in given:
                value = given[signal.name]
                if isinstance(value, str):
                    if not signal.choices:
                        raise DbcError(
                            f"{message.name}.{signal.name}: {value!r} is a value name, but the "
                            "signal has no value table; give a number"
                        )
                    value = self._choice(message, signal.name, signal.choices, value)
                values[signal.name] = value
            elif signal.multiplexer_ids is None or self._selected(message, signal, given):
                values[signal.name] = self._default(signal)
        return values

    @staticmethod
    def _choice(message: Message, signal: str, choices: Mapping[int, Any], name: str) -> int:
        for raw, label in choices.items():
            if str(label) == name:
                return raw
        labels = ", ".join(str(v) for v in choices.values())
        raise DbcError(f"{message.name}.{signal}: no value named {name!r}; values: {labels}")

    @staticmethod
    def _selected(message: Message, signal: Any, given: Mapping[str, Any]) -> bool:
        mux = signal.multiplexer_signal
        selector = given.get(mux, 0) if mux else 0
        return selector in (signal.multiplexer_ids or ())

    @staticmethod
    def _default(signal: Any) -> float | int:
        if signal.initial is not None:
            return float(signal.initial)
        low = signal.minimum if signal.minimum is not None else 0
        high = signal.maximum if signal.maximum is not None else 0
        return min(max(0, low), high) if low <= high else 0

    @staticmethod
    def _explain(message: Message, values: Mapping[str, Any], err: Exception) -> str:
        for signal in message.signals:
            value = values.get(signal.name)
            if not isinstance(value, int | float):
                continue
            if (signal.minimum is not None and value < signal.minimum) or (
                signal.maximum is not None and value > signal.maximum
            ):
                unit = f" {signal.unit}" if signal.unit else ""
                return (f"{signal.name}={value}{unit} is outside "
                        f"{signal.minimum}..{signal.maximum}{unit}")  # fmt: skip
        return str(err)

    def _brs(self, message: Message) -> bool:
        attributes = message.dbc.attributes if message.dbc else {}
        if "CANFD_BRS" in attributes:
            return str(attributes["CANFD_BRS"].value) == "1"
        definitions = self.database.dbc.attribute_definitions if self.database.dbc else {}
        definition = definitions.get("CANFD_BRS")
        return definition is None or str(definition.default_value) == "1"


_BO = re.compile(r"BO_\s+(\d+)\s+(\w+)\s*:\s*\d+\s+\w+")
_SG = re.compile(r"\s+SG_\s+(\w+)\s")
# Vector's container for signals that belong to no message: cantools leaves it out, rightly.
_PSEUDO_MESSAGES = {"VECTOR__INDEPENDENT_SIG_MSG"}


def _check_every_definition_loaded(path: Path, database: Database) -> None:
    """cantools skips a message or signal it cannot parse (a file cut mid-line, say) without a
    word: every BO_ and SG_ line of the file must have become a message or a signal."""
    loaded = {m.name: {s.name for s in m.signals} for m in database.messages}
    message: str | None = None
    text = path.read_text(encoding="cp1252", errors="replace")  # cantools' default encoding
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("BO_ "):
            found = _BO.match(line)
            if found is None:
                raise DbcError(f"{path}: line {number}: message definition not understood "
                               f"(cut short?): {line.strip()!r}")  # fmt: skip
            message = found.group(2)
            if message not in loaded and message not in _PSEUDO_MESSAGES:
                raise DbcError(f"{path}: line {number}: message {message} did not load")
        elif line.lstrip().startswith("SG_ ") and message is not None:
            signal = _SG.match(line)
            if message in _PSEUDO_MESSAGES:
                continue
            if signal is None or signal.group(1) not in loaded[message]:
                raise DbcError(f"{path}: line {number}: signal of {message} did not load: "
                               f"{line.strip()!r}")  # fmt: skip
        elif line.strip():
            message = None if not line.startswith((" ", "\t")) else message
