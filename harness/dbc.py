"""DBC messages by name: encode signal values into frames, decode frames into signals.

A thin layer over cantools that speaks the harness's `CanFrame` and reports mistakes
clearly: the file and line of a bad DBC, an unknown message (with the closest names), an
unknown signal (with the message's signals), a value outside the signal's range.
"""

from __future__ import annotations

import bisect
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
from harness.frames.can import FD_LENGTHS, CanFrame
from harness.frames.ids import format_id, id_key
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
            text = path.read_text(encoding="cp1252", errors="replace")  # cantools' encoding
            statements = _statements(path, text)  # a file cut short is refused here
            database = cantools.database.load_file(str(path), database_format="dbc")
        except OSError as err:
            raise DbcError(f"{path}: cannot read: {err.strerror}") from err
        except (CantoolsError, ValueError, ArithmeticError) as err:
            raise DbcError(f"{path}: not a valid DBC: {err}") from err
        if not isinstance(database, Database):
            raise DbcError(f"{path}: not a CAN database")
        _check_every_definition_loaded(path, text, statements, database)
        return cls(database, str(path))

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.database.messages]

    def sent_by(self, node: str) -> frozenset[int]:
        """The IDs of every message `node` transmits, as keys of `harness.frames.ids`
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


# ---- the file's statements, as cantools reads them ----

# cantools' tokenizer (its DbcParser), rule for rule and in its order, so that the file splits
# into the same tokens: a comment, or a string that spans lines, is never a definition.
_TOKEN = re.compile(
    r"(?P<skip>[ \r\n\t]+|//.*?\n)"
    r"|(?P<number>[-+]?\d+\.?\d*(?:[eE][+-]?\d+)?)"
    r"|(?P<word>[A-Za-z0-9_]+)"
    r'|(?P<string>"(?:\\"|[^"])*?")'
    r'|(?P<quote>")'  # a string that never ends (cantools refuses the file)
    r"|(?P<other>.)",
    re.S,
)
_KEYWORDS = frozenset({
    "BA_", "BA_DEF_", "BA_DEF_DEF_", "BA_DEF_DEF_REL_", "BA_DEF_REL_", "BA_DEF_SGTYPE_",
    "BA_REL_", "BA_SGTYPE_", "BO_", "BO_TX_BU_", "BS_", "BU_", "BU_BO_REL_", "BU_EV_REL_",
    "BU_SG_REL_", "CAT_", "CAT_DEF_", "CM_", "ENVVAR_DATA_", "EV_", "EV_DATA_", "FILTER", "NS_",
    "NS_DESC_", "SG_", "SG_MUL_VAL_", "SGTYPE_", "SGTYPE_VAL_", "SIG_GROUP_", "SIG_TYPE_REF_",
    "SIG_VALTYPE_", "SIGTYPE_VALTYPE_", "VAL_", "VAL_TABLE_", "VERSION",
})
# Every statement but VERSION, NS_, BS_, BU_, BO_ and SG_ ends with ';'. A statement never holds
# a keyword that starts one of these, so each such keyword outside them starts a statement.
_ENDS_WITH_SEMICOLON = frozenset({
    "BA_", "BA_DEF_", "BA_DEF_DEF_", "BA_DEF_DEF_REL_", "BA_DEF_REL_", "BA_REL_", "BO_TX_BU_",
    "CM_", "ENVVAR_DATA_", "EV_", "SG_MUL_VAL_", "SIG_GROUP_", "SIG_VALTYPE_", "VAL_",
    "VAL_TABLE_",
})
# Vector's container for signals that belong to no message: cantools leaves it out, rightly.
_PSEUDO_MESSAGE = "VECTOR__INDEPENDENT_SIG_MSG"


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # number, word, keyword, string (its text without the quotes), other
    text: str
    offset: int

    def is_(self, text: str) -> bool:
        return self.kind == "other" and self.text == text


@dataclass(frozen=True, slots=True)
class _Statement:
    keyword: str
    tokens: tuple[_Token, ...]  # the keyword first


@dataclass(slots=True)
class _Message:
    line: int
    number: int  # as the file writes it: the extended flag in bit 31
    name: str  # the long name, if the file gives one (as cantools names it)
    signals: list[tuple[int, str, str]]  # line, name (long, if given), the line's text

    @property
    def key(self) -> int:  # cantools' reading: bit 31 the extended flag, the rest the ID
        return id_key(self.number & 0x7FFF_FFFF, bool(self.number & 0x8000_0000))


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _line_text(text: str, offset: int) -> str:
    end = text.find("\n", offset)
    return text[text.rfind("\n", 0, offset) + 1 : end if end >= 0 else len(text)].strip()


def _statements(path: Path, text: str) -> list[_Statement]:
    """The file's statements, as cantools' grammar splits them; a file cut short is an error.
    cantools takes a file whose last statement breaks off at its end for whole (its parser
    accepts a mismatch at the end of the input) and drops that statement: a start value, every
    value table after the cut, a signal or a message, without a word."""
    tokens: list[_Token] = []
    for found in _TOKEN.finditer(text):
        kind, value = found.lastgroup or "other", found.group()
        if kind == "skip":
            continue
        if kind == "quote":
            raise DbcError(f"{path}: line {_line(text, found.start())}: the file ends inside a "
                           f"string (cut short? or a stray '\"'): "
                           f"{_line_text(text, found.start())!r}")  # fmt: skip
        if kind == "string":
            value = value[1:-1].replace('\\"', '"')
        elif kind == "word" and value in _KEYWORDS:
            kind = "keyword"
        tokens.append(_Token(kind, value, found.start()))
    statements: list[_Statement] = []
    last_keyword = max((i for i, token in enumerate(tokens) if token.kind == "keyword"),
                       default=-1)  # fmt: skip
    at = 0
    while at < len(tokens):
        first = tokens[at]
        if first.kind != "keyword":  # no statement starts so: cantools refuses the file
            if at > last_keyword:  # the file's last statement, cut in its keyword
                raise DbcError(f"{path}: line {_line(text, first.offset)}: the file ends in "
                               f"something that starts no statement (cut short?): "
                               f"{_line_text(text, first.offset)!r}")  # fmt: skip
            at += 1
            continue
        if first.text in _ENDS_WITH_SEMICOLON:
            end = next((i + 1 for i in range(at + 1, len(tokens)) if tokens[i].is_(";")), None)
            if end is None:
                raise DbcError(f"{path}: line {_line(text, first.offset)}: the file ends inside "
                               f"this {first.text} statement, before its ';' (cut short?): "
                               f"{_line_text(text, first.offset)!r}")  # fmt: skip
        elif first.text == "NS_":  # "NS_ :", then keywords up to the next "<anything> :"
            end = at + 2
            while end < len(tokens) and not (end + 1 < len(tokens) and tokens[end + 1].is_(":")):
                end += 1
        else:  # up to the next keyword
            end = at + 1
            while end < len(tokens) and tokens[end].kind != "keyword":
                end += 1
        statements.append(_Statement(first.text, tuple(tokens[at:end])))
        at = end
    return statements


def _check_every_definition_loaded(
    path: Path, text: str, statements: list[_Statement], database: Database
) -> None:
    """cantools skips a message or signal at the end of a file cut short without a word, and
    keeps two messages of one ID or one name, decoding as the last: every BO_ and SG_ must have
    become a message or a signal (under its long name, if the file gives one), and messages
    differ in ID (of one kind: 0x100 and 0x100x differ) and in name."""
    long_messages: dict[int, str] = {}  # SystemMessageLongSymbol: the real name of a message
    long_signals: dict[tuple[int, str], str] = {}  # and of a signal (BO_/SG_ hold 32 chars)
    for statement in statements:
        t = statement.tokens
        if statement.keyword != "BA_" or len(t) < 6 or t[2].kind != "keyword":
            continue
        if t[1].text == "SystemMessageLongSymbol" and t[2].text == "BO_" and len(t) == 6:
            long_messages[_whole(t[3])] = t[4].text
        elif t[1].text == "SystemSignalLongSymbol" and t[2].text == "SG_" and len(t) == 7:
            long_signals[_whole(t[3]), t[4].text] = t[5].text
    line_starts = [0, *(found.end() for found in re.finditer("\n", text))]
    messages: list[_Message] = []
    current: _Message | None = None
    for statement in statements:
        t, line = statement.tokens, bisect.bisect_right(line_starts, statement.tokens[0].offset)
        if statement.keyword == "BO_":
            current = None
            kinds = [token.kind for token in t[1:6]]
            if kinds != ["number", "word", "other", "number", "word"] or not t[3].is_(":"):
                raise DbcError(f"{path}: line {line}: message definition not understood "
                               f"(cut short?): {_line_text(text, t[0].offset)!r}")  # fmt: skip
            if t[2].text != _PSEUDO_MESSAGE:  # its signals are not looked for either
                number = _whole(t[1])
                current = _Message(line, number, long_messages.get(number, t[2].text), [])
                messages.append(current)
        elif statement.keyword == "SG_":
            if current is None:  # the container's, or outside a message (cantools refuses)
                continue
            if len(t) < 2 or t[1].kind != "word":
                raise DbcError(f"{path}: line {line}: signal definition not understood "
                               f"(cut short?): {_line_text(text, t[0].offset)!r}")  # fmt: skip
            name = long_signals.get((current.number, t[1].text), t[1].text)
            current.signals.append((line, name, _line_text(text, t[0].offset)))
        else:
            current = None
    by_name: dict[str, _Message] = {}
    by_id: dict[int, _Message] = {}
    for message in messages:
        first = by_name.setdefault(message.name, message)
        if first is not message:
            raise DbcError(f"{path}: line {message.line}: a second message named {message.name} "
                           f"(ID {format_id(message.key)}; the first, line {first.line}, has ID "
                           f"{format_id(first.key)}): names must differ")  # fmt: skip
        first = by_id.setdefault(message.key, message)
        if first is not message:
            raise DbcError(f"{path}: line {message.line}: {message.name} has the same ID, "
                           f"{format_id(message.key)}, as {first.name} (line {first.line}): "
                           f"every such frame would decode as {message.name}")  # fmt: skip
    loaded = {m.name: {s.name for s in m.signals} for m in database.messages}
    for message in messages:
        if message.name not in loaded:
            raise DbcError(f"{path}: line {message.line}: message {message.name} did not load")
        for line, name, line_text in message.signals:
            if name not in loaded[message.name]:
                raise DbcError(f"{path}: line {line}: signal {name} of {message.name} did not "
                               f"load (cut short?): {line_text!r}")  # fmt: skip


def _whole(token: _Token) -> int:
    try:
        return int(token.text)
    except ValueError:  # not a whole number: cantools refuses the file
        return -1
