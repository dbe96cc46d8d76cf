"""LIN description files (LDF) by name: frames, signals and schedule tables; signal values
encoded into frame data and decoded back.

A thin layer over ldfparser that speaks names, numbers and bytes and reports mistakes clearly.
A malformed LDF is an `LdfError` "FILE:LINE:COL: reason": the file is parsed with ldfparser's
own grammar, keeping positions, and checked before ldfparser builds its objects, because
ldfparser lets several mistakes through (two frames of one ID, a signal outside its frame, a
second definition that silently replaces the first) and raises bare exceptions without a
position for others. An unknown frame lists the closest names, an unknown signal the frame's
signals, a value outside its encoding the range the encoding allows.
"""

from __future__ import annotations

import difflib
import functools
import itertools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import ldfparser  # type: ignore[import-untyped]
from lark import Lark, Token, Tree
from lark.exceptions import (
    LarkError,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)
from ldfparser.encoding import (  # type: ignore[import-untyped]
    ASCIIValue,
    BCDValue,
    LogicalValue,
    PhysicalValue,
)
from ldfparser.frame import LinUnconditionalFrame  # type: ignore[import-untyped]
from ldfparser.grammar import LdfTransformer  # type: ignore[import-untyped]
from ldfparser.lin import LinVersion, parse_lin_version  # type: ignore[import-untyped]

from harness.errors import HarnessError
from harness.frames.lin import DIAGNOSTIC_IDS, MAX_ID
from harness.paths import bundled

PROJECT_LDF = bundled("dbc") / "exterior_light.ldf"  # checkout top level, or in the package

MASTER_REQUEST_ID, SLAVE_RESPONSE_ID = DIAGNOSTIC_IDS  # 0x3C, 0x3D

Kind = Literal["unconditional", "event_triggered", "diagnostic"]
_DIAGNOSTIC_COMMANDS = (("master_request", MASTER_REQUEST_ID, "MasterReq"),
                        ("slave_response", SLAVE_RESPONSE_ID, "SlaveResp"))  # fmt: skip
Value = int | float | str | bytes


class LdfError(HarnessError):
    """An LDF that cannot be used, or a frame / signal / value it does not allow."""


@dataclass(frozen=True, slots=True)
class Physical:
    """One `physical_value` range of a signal encoding: raw values raw_min..raw_max stand for
    raw * scale + offset."""

    raw_min: int
    raw_max: int
    scale: float
    offset: float
    unit: str

    def value(self, raw: int) -> float:
        return _tidy(raw * self.scale + self.offset)

    def raw(self, value: float) -> int | None:
        """The raw value that stands for `value` (rounded to the nearest step); None when it
        lies outside this range."""
        if self.scale == 0:
            return self.raw_min if value == self.offset else None
        raw = round((value - self.offset) / self.scale)
        return raw if self.raw_min <= raw <= self.raw_max else None

    def __str__(self) -> str:
        low, high = sorted((self.value(self.raw_min), self.value(self.raw_max)))
        return f"{low:g}..{high:g}" + (f" {self.unit}" if self.unit else "")


@dataclass(frozen=True, slots=True)
class LdfSignal:
    name: str
    width: int  # bits
    init: int | bytes  # the raw initial value; a byte-array signal's bytes
    publisher: str | None  # None for a slave response's signals: any slave may send them
    subscribers: tuple[str, ...]
    placements: tuple[tuple[str, int], ...]  # (frame, bit offset) of every frame carrying it
    encoding: str | None  # the signal encoding type's name
    logical: tuple[tuple[int, str | None], ...]  # raw value and text (which may be missing)
    physical: tuple[Physical, ...]
    byte_encoding: Literal["bcd", "ascii"] | None  # for a byte array

    @property
    def is_array(self) -> bool:
        return isinstance(self.init, bytes)


@dataclass(frozen=True, slots=True)
class LdfFrame:
    name: str
    frame_id: int
    length: int
    # The node that sends the response; None when several may (an event-triggered frame over
    # frames of several slaves, the slave response): `publishers` lists them.
    publisher: str | None
    subscribers: tuple[str, ...]
    kind: Kind
    associated: tuple[str, ...]  # an event-triggered frame's unconditional frames
    signals: tuple[str, ...]
    enhanced: bool  # the checksum model: enhanced (LIN 2.x) or classic
    publishers: tuple[str, ...]
    collision_table: str | None  # an event-triggered frame's collision-resolving schedule


@dataclass(frozen=True, slots=True)
class Slot:
    frame: str
    frame_id: int
    delay_ms: float


class Ldf:
    """One LIN cluster: its master, slaves, frames, signals and schedule tables."""

    def __init__(self, ldf: Any, json: Mapping[str, Any], index: _Index, source: str,
                 unsupported: Mapping[str, str] | None = None) -> None:  # fmt: skip
        self.source = source
        # schedule tables left out of `schedules`, each with the reason (file:line:col)
        self.unsupported_schedules: dict[str, str] = dict(unsupported or {})
        self.protocol_version = str(ldf.get_protocol_version())
        self.language_version = str(ldf.get_language_version())
        self.bitrate = _bitrate(index.speed, int(ldf.get_baudrate()))
        master = ldf.get_master()
        self.master: str = master.name
        self.time_base_ms = _tidy(float(master.timebase) * 1000)
        self.jitter_ms = _tidy(float(master.jitter) * 1000)
        self.slaves: tuple[str, ...] = tuple(json["nodes"].get("slaves") or ())
        enhanced = _lin2(ldf.get_protocol_version())
        # LIN 2.x talks to LIN 1.x slaves with the classic checksum (their LIN_protocol)
        self._legacy = {n["name"] for n in json.get("node_attributes") or ()
                        if not _lin2(parse_lin_version(n["lin_protocol"]))}  # fmt: skip
        self._packers: dict[str, Any] = {}  # frame name -> ldfparser's frame (packs the bits)
        self.frames: dict[str, LdfFrame] = {}
        signal_frames: dict[str, list[tuple[str, int]]] = {}

        for frame in json["frames"]:
            packer = ldf.get_unconditional_frame(frame["name"])
            self._add_frame(packer, "unconditional", enhanced, frame["publisher"], ldf)
        for frame in json.get("event_triggered_frames") or ():
            self._add_event_triggered(frame, enhanced)
        for frame in json.get("diagnostic_frames") or ():
            packer = ldf.get_diagnostic_frame(frame["name"])
            self._add_frame(packer, "diagnostic", enhanced, None, ldf)
        tables = json.get("schedule_tables") or ()
        used = {entry["command"]["type"] for table in tables for entry in table["schedule"]}
        for kind, frame_id, name in _DIAGNOSTIC_COMMANDS:
            if kind in used and not any(f.frame_id == frame_id for f in self.frames.values()):
                packer = LinUnconditionalFrame(frame_id, name, 8, {},  # no Diagnostic_frames
                                               pad_with_zero=False)  # fmt: skip
                self._add_frame(packer, "diagnostic", enhanced, None, ldf)
        for name, packer in self._packers.items():
            for offset, signal in packer.signal_map:
                signal_frames.setdefault(signal.name, []).append((name, int(offset)))

        self.signals: dict[str, LdfSignal] = {}
        for definition in (*json["signals"], *(json.get("diagnostic_signals") or ())):
            name = definition["name"]
            placements = tuple(signal_frames.get(name, ()))
            if "publisher" in definition:
                publisher: str | None = definition["publisher"]
                subscribers = tuple(definition["subscribers"])
                signal = ldf.get_signal(name)
            else:  # a diagnostic signal: its frame's publisher and subscribers
                carrier = self.frames.get(placements[0][0]) if placements else None
                publisher = carrier.publisher if carrier else None
                subscribers = carrier.subscribers if carrier else ()
                signal = ldf.get_diagnostic_signal(name)
            self.signals[name] = _signal(signal, publisher, subscribers, placements)

        self.schedules: dict[str, tuple[Slot, ...]] = {}
        by_id = {f.frame_id: f for f in self.frames.values()}
        diagnostic = {kind: frame_id for kind, frame_id, _ in _DIAGNOSTIC_COMMANDS}
        for table in tables:
            if table["name"] in self.unsupported_schedules:
                continue
            slots = []
            for entry in table["schedule"]:
                command = entry["command"]
                if command["type"] == "frame":
                    slot = self.frames[command["frame"]]
                else:  # MasterReq, SlaveResp: the checks let no other command through
                    slot = by_id[diagnostic[command["type"]]]
                slots.append(Slot(slot.name, slot.frame_id, _tidy(entry["delay"] * 1000)))
            self.schedules[table["name"]] = tuple(slots)

    @classmethod
    def load(cls, path: str | Path = PROJECT_LDF) -> Ldf:
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise LdfError(f"LDF not found: expected {path}") from None
        except OSError as err:
            raise LdfError(f"{path}: cannot read: {err.strerror}") from err
        try:
            text, encoding = data.decode("utf-8-sig"), "utf-8-sig"
        except UnicodeDecodeError:
            text, encoding = data.decode("latin-1"), "latin-1"  # older tools write Latin-1
        tree = _parse(path, text)
        json = _transform(path, tree)
        index = _Index(tree)
        checker = _Checker(path, json, index)
        checker.check()
        try:
            # Bits no signal covers are sent recessive (1), as ISO 17987-2 asks and CANoe
            # does (ldfparser issue #131); ldfparser pads with 0 by default.
            ldf = ldfparser.parse_ldf(str(path), encoding=encoding, pad_with_zero=False)
        except Exception as err:  # what the checks do not foresee: ldfparser's bare exceptions
            raise _unexplained(path, index, err) from err
        return cls(ldf, json, index, str(path), checker.unsupported)

    @property
    def nodes(self) -> tuple[str, ...]:
        return (self.master, *self.slaves)

    def frame(self, name_or_id: str | int) -> LdfFrame:
        """A frame by name or by frame ID."""
        if isinstance(name_or_id, int):
            for frame in self.frames.values():
                if frame.frame_id == name_or_id:
                    return frame
            ids = ", ".join(f"0x{f.frame_id:02X} {f.name}" for f in self.frames.values())
            raise LdfError(f"{self.source}: no frame with ID {_hex(name_or_id)}; frames: {ids}")
        found = self.frames.get(name_or_id)
        if found is None:
            close = difflib.get_close_matches(name_or_id, list(self.frames), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise LdfError(f"{self.source}: no frame named {name_or_id!r}{hint}")
        return found

    def published_by(self, node: str) -> tuple[LdfFrame, ...]:
        """The frames whose response `node` sends (or may send: an event-triggered frame over
        one of its frames, the slave response for a slave)."""
        if node not in self.nodes:
            nodes = ", ".join(self.nodes)
            raise LdfError(f"{self.source}: no node named {node!r} (nodes: {nodes})")
        return tuple(f for f in self.frames.values() if node in f.publishers)

    def initial(self, frame: str | int) -> bytes:
        """The frame's data with every signal at its initial value."""
        return self.encode(frame)

    def encode(self, frame: str | int, **signals: Value) -> bytes:
        """The frame's data: physical values, or logical values by their names (a raw number
        for a signal with no encoding, or with logical values only); signals not given take
        their initial values. A byte array takes bytes (a string for an ASCII encoding, a
        number for BCD)."""
        f = self.frame(frame)
        packer = self._packer(f)
        self._check_names(f, signals)
        raw = {name: self._raw(f, self.signals[name], value) for name, value in signals.items()}
        return bytes(packer.encode_raw(raw))

    def update(self, frame: str | int, data: bytes, **signals: Value) -> bytes:
        """`data` with the given signals changed (values as `encode` takes them) and every
        other signal kept at its raw value (a round trip through names could change it: two
        logical values may share a name)."""
        f = self.frame(frame)
        self._check_names(f, signals)
        raw: dict[str, Any] = {
            name: list(value) if isinstance(value, bytes) else value
            for name, value in self.decode(f.name, data, raw=True).items()
        }
        raw.update({name: self._raw(f, self.signals[name], v) for name, v in signals.items()})
        return bytes(self._packer(f).encode_raw(raw))

    def decode(self, frame: str | int, data: bytes, raw: bool = False) -> dict[str, Any]:
        """The frame's signals: physical values as numbers, logical values as their names
        (raw numbers with `raw=True`); a byte array as bytes (ASCII as a string, BCD as a
        number). A raw value outside the signal's encoding is an error."""
        f = self.frame(frame)
        packer = self._packer(f)
        data = bytes(data)
        if len(data) != f.length:
            raise LdfError(f"{f.name} is {f.length} bytes long; got {len(data)}: "
                           f"{data.hex(' ') or 'no data'}")  # fmt: skip
        values = packer.decode_raw(bytearray(data))
        decoded: dict[str, Any] = {}
        for name, value in values.items():
            if isinstance(value, list):
                value = bytes(value)
            decoded[name] = value if raw else self._physical(f, self.signals[name], value)
        return decoded

    # ---- helpers ----

    @staticmethod
    def _check_names(frame: LdfFrame, signals: Mapping[str, Any]) -> None:
        unknown = sorted(set(signals) - set(frame.signals))
        if unknown:
            raise LdfError(f"{frame.name} has no signal {', '.join(unknown)}; "
                           f"its signals: {', '.join(frame.signals) or 'none'}")  # fmt: skip

    def _add_frame(
        self, packer: Any, kind: Kind, enhanced: bool, publisher: str | None, ldf: Any
    ) -> None:
        name, frame_id = packer.name, int(packer.frame_id)
        if kind == "diagnostic":
            master_request = frame_id == MASTER_REQUEST_ID
            publisher = self.master if master_request else None
            publishers = (self.master,) if master_request else self.slaves
            subscribers = self.slaves if master_request else (self.master,)
        else:
            assert publisher is not None
            publishers = (publisher,)
            signals = [ldf.get_signal(s.name) for _, s in packer.signal_map]
            wanted = {node.name for signal in signals for node in signal.subscribers}
            subscribers = tuple(n for n in self.nodes if n in wanted and n != publisher)
        self._packers[name] = packer
        self.frames[name] = LdfFrame(
            name=name,
            frame_id=frame_id,
            length=int(packer.length),
            publisher=publisher,
            subscribers=subscribers,
            kind=kind,
            associated=(),
            signals=tuple(s.name for _, s in packer.signal_map),
            enhanced=(enhanced and frame_id not in DIAGNOSTIC_IDS
                      and not self._legacy & {*publishers, *subscribers}),
            publishers=publishers,
            collision_table=None,
        )

    def _add_event_triggered(self, frame: Mapping[str, Any], enhanced: bool) -> None:
        associated = tuple(self.frames[name] for name in frame["frames"])
        publishers = tuple(dict.fromkeys(a.publisher for a in associated if a.publisher))
        wanted = {n for a in associated for n in a.subscribers}
        self.frames[frame["name"]] = LdfFrame(
            name=frame["name"],
            frame_id=int(frame["frame_id"]),
            length=associated[0].length,  # the checks made them all one length
            publisher=publishers[0] if len(publishers) == 1 else None,
            subscribers=tuple(n for n in self.nodes if n in wanted and n not in publishers),
            kind="event_triggered",
            associated=tuple(a.name for a in associated),
            signals=(),
            enhanced=enhanced and all(a.enhanced for a in associated),
            publishers=publishers,
            collision_table=frame["collision_resolving_schedule_table"],
        )

    def _packer(self, frame: LdfFrame) -> Any:
        packer = self._packers.get(frame.name)
        if packer is None:
            raise LdfError(f"{frame.name} is an event-triggered frame: its data is that of one of "
                           f"its frames ({', '.join(frame.associated)}); encode or decode "
                           f"that one")  # fmt: skip
        return packer

    @staticmethod
    def _raw(frame: LdfFrame, signal: LdfSignal, value: Value) -> int | list[int]:
        where = f"{frame.name}.{signal.name}"
        if signal.is_array:
            return _raw_bytes(where, signal, value)
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, str):
            for raw, text in signal.logical:
                if text == value:
                    return raw
            names = [text for _, text in signal.logical if text is not None]
            if not names:
                raise LdfError(f"{where}: {value!r} is a value name, but the signal has no "
                               f"logical values; give a number")  # fmt: skip
            raise LdfError(f"{where}: no logical value named {value!r}; values: {', '.join(names)}")
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise LdfError(f"{where}: {value!r} is neither a number nor a value name")
        limit = (1 << signal.width) - 1
        if signal.physical:
            for physical in signal.physical:
                stands_for = physical.raw(value)
                if stands_for is not None:
                    if not 0 <= stands_for <= limit:
                        field = f"{signal.width}-bit field"
                        raise LdfError(f"{where}={value:g} is raw {stands_for}, which its "
                                       f"{field} cannot hold (0..{limit})")  # fmt: skip
                    return stands_for
            raise LdfError(f"{where}={value:g} is outside its range {_ranges(signal)}")
        if value != int(value):
            raise LdfError(f"{where}={value:g}: the signal has no physical encoding; give a raw "
                           f"whole number")  # fmt: skip
        raw = int(value)  # logical values alone name special values; others are numbers
        if not 0 <= raw <= limit:
            raise LdfError(f"{where}={raw} does not fit its {signal.width}-bit field (0..{limit})")
        return raw

    @staticmethod
    def _physical(frame: LdfFrame, signal: LdfSignal, raw: int | bytes) -> Any:
        where = f"{frame.name}.{signal.name}"
        if isinstance(raw, bytes):
            if signal.byte_encoding == "ascii":
                try:
                    return raw.decode("ascii")
                except UnicodeDecodeError:
                    raise LdfError(f"{where}: {raw.hex(' ')} is not ASCII text") from None
            if signal.byte_encoding == "bcd":
                if any(digit > 9 for digit in raw):
                    raise LdfError(f"{where}: {raw.hex(' ')} is not BCD (a digit per byte)")
                return int("".join(str(digit) for digit in raw))
            return raw
        for value, text in signal.logical:
            if value == raw:
                return text if text is not None else raw
        for physical in signal.physical:
            if physical.raw_min <= raw <= physical.raw_max:
                return physical.value(raw)
        if not signal.physical:  # no encoding, or logical values naming special values only
            return raw
        raise LdfError(f"{where}: raw value {raw} is outside its encoding {signal.encoding} "
                       f"({_ranges(signal)}); decode with raw=True for the raw values")  # fmt: skip


def _signal(
    signal: Any, publisher: str | None, subscribers: tuple[str, ...], placements: tuple[Any, ...]
) -> LdfSignal:
    logical: list[tuple[int, str | None]] = []
    physical: list[Physical] = []
    byte_encoding: Literal["bcd", "ascii"] | None = None
    encoding = signal.encoding_type
    for converter in encoding.get_converters() if encoding is not None else ():
        if isinstance(converter, LogicalValue):
            logical.append((int(converter.phy_value), converter.info))
        elif isinstance(converter, PhysicalValue):
            physical.append(Physical(int(converter.phy_min), int(converter.phy_max),
                                     float(converter.scale), float(converter.offset),
                                     converter.unit or ""))  # fmt: skip
        elif isinstance(converter, BCDValue):
            byte_encoding = "bcd"
        elif isinstance(converter, ASCIIValue):
            byte_encoding = "ascii"
    init = signal.init_value
    return LdfSignal(
        name=signal.name,
        width=int(signal.width),
        init=bytes(init) if isinstance(init, list) else int(init),
        publisher=publisher,
        subscribers=subscribers,
        placements=placements,
        encoding=encoding.name if encoding is not None else None,
        logical=tuple(logical),
        physical=tuple(physical),
        byte_encoding=byte_encoding,
    )


def _raw_bytes(where: str, signal: LdfSignal, value: Value) -> list[int]:
    size = signal.width // 8
    if isinstance(value, str) and signal.byte_encoding == "ascii":
        try:
            data = value.encode("ascii")
        except UnicodeEncodeError:
            raise LdfError(f"{where}: {value!r} is not ASCII text") from None
    elif isinstance(value, int) and not isinstance(value, bool) and signal.byte_encoding == "bcd":
        digits = str(value)
        if value < 0 or len(digits) > size:
            raise LdfError(f"{where}={value}: a BCD field of {size} digits holds 0..{'9' * size}")
        data = bytes(int(d) for d in digits.rjust(size, "0"))
    elif isinstance(value, bytes | bytearray):
        data = bytes(value)
    else:
        kinds = {"ascii": "a string or ", "bcd": "a number or "}.get(signal.byte_encoding or "", "")
        raise LdfError(f"{where}: a byte array of {size} bytes takes {kinds}bytes, not {value!r}")
    if len(data) != size:
        raise LdfError(f"{where}: {len(data)} bytes given; the signal is {size} bytes long")
    return list(data)


def _ranges(signal: LdfSignal) -> str:
    parts = [str(p) for p in signal.physical]
    parts += [f"{raw} ({text})" if text is not None else str(raw) for raw, text in signal.logical]
    return ", ".join(parts)


def _tidy(value: float) -> float:
    """A float without the noise of binary arithmetic: 23 * 0.1 is 2.3, not 2.3000000000000003."""
    return float(f"{value:.12g}")


def _hex(number: int) -> str:
    return f"-0x{-number:02X}" if number < 0 else f"0x{number:02X}"


def _lin2(version: Any) -> bool:
    """LIN 2.x and its descendants (ISO 17987, SAE J2602) use the enhanced checksum."""
    return not isinstance(version, LinVersion) or version.major >= 2


def _bitrate(speed: str | None, fallback: int) -> int:
    """The bit rate from LIN_speed as written: ldfparser truncates kbps * 1000 (4.35 kbps gives
    4349); rounding gives 4350."""
    return round(float(speed) * 1000) if speed is not None else fallback


# ---- parsing, with positions ----


@functools.cache
def _grammar() -> Lark:
    """ldfparser's grammar, as ldfparser parses with it, keeping the positions."""
    grammar = Path(ldfparser.__file__).parent / "grammars" / "ldf.lark"
    return Lark(grammar.read_text(), parser="lalr", propagate_positions=True)


def _parse(path: Path, text: str) -> Tree[Token]:
    try:
        return _grammar().parse(text)
    except UnexpectedInput as err:
        raise _syntax_error(path, text, err) from None


def _transform(path: Path, tree: Tree[Token]) -> dict[str, Any]:
    try:
        json: dict[str, Any] = LdfTransformer().transform(tree)
    except VisitError as err:
        meta = getattr(err.obj, "meta", None)
        where = f"{path}:{meta.line}:{meta.column}" if meta and not meta.empty else str(path)
        if err.rule == "event_triggered_frame_definition" and isinstance(err.orig_exc, IndexError):
            raise LdfError(f"{where}: event-triggered frame {_first_name(err.obj)}: no collision-"
                           f"resolving schedule table; ldfparser needs one, written before the "
                           f"frame ID ('Name: Table, ID, Frame1, Frame2;')") from None  # fmt: skip
        raise LdfError(f"{where}: {err.orig_exc}") from err
    except LarkError as err:
        raise LdfError(f"{path}: {err}") from err
    return json


def _syntax_error(path: Path, text: str, err: UnexpectedInput) -> LdfError:
    line, column = err.line, err.column
    if isinstance(err, UnexpectedCharacters):
        what, expected = f"unexpected character {err.char!r}", set(err.allowed or ())
    elif isinstance(err, UnexpectedToken) and err.token.type != "$END":
        what, expected = f"unexpected {str(err.token)!r}", _accepted(err)
    elif isinstance(err, UnexpectedToken | UnexpectedEOF):
        what = "the file ends here (cut short?)"
        expected = _accepted(err) if isinstance(err, UnexpectedToken) else set(err.expected)
        end = len(text.rstrip())
        line = text.count("\n", 0, end) + 1
        column = end - (text.rfind("\n", 0, end) + 1) + 1
    else:
        what, expected = str(err).strip().splitlines()[0], set()
    reason = f"{what}; expected {_describe(expected)}" if expected else what
    if isinstance(err, UnexpectedToken) and str(err.token) == "}":
        before = text[: err.token.start_pos].rstrip() if err.token.start_pos is not None else ""
        if before.endswith("{"):  # the spec allows it; ldfparser's grammar does not
            reason = ("an empty block (a frame with no signals?): ldfparser, which reads LDF "
                      "files here, needs at least one entry")  # fmt: skip
    return LdfError(f"{path}:{line}:{column}: {reason}")


def _accepted(err: UnexpectedToken) -> set[str]:
    """What the parser would have taken: its state's own set (lark's `expected` holds the
    look-ahead of states it merged, e.g. ':' and 'delay' after a slave's name)."""
    try:
        return set(err.interactive_parser.accepts())  # type: ignore[no-untyped-call]
    except LarkError:  # lark's own set is the next best
        return set(err.expected)


_TERMINALS = {
    "CNAME": "a name",
    "C_INT": "an integer",
    "C_FLOAT": "a number",
    "ESCAPED_STRING": "a quoted string",
    "LIN_VERSION": "a version (like 2.1)",
    "ISO_VERSION": "a version (like ISO17987:2015)",
    "J2602_VERSION": "a version (like J2602_1_1.0)",
    "$END": "the end of the file",
}


def _describe(terminals: Iterable[str], most: int = 8) -> str:
    words = []
    for name in terminals:
        try:
            pattern = _grammar().get_terminal(name).pattern
        except KeyError:
            words.append(_TERMINALS.get(name, name))
            continue
        words.append(repr(pattern.value) if pattern.type == "str" else _TERMINALS.get(name, name))
    words = sorted(set(words))
    if len(words) > most:
        return f"{', '.join(words[:most])} or {len(words) - most} more"
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _first_name(tree: Any) -> str:
    node = tree.children[0] if isinstance(tree, Tree) and tree.children else tree
    while isinstance(node, Tree) and node.children:
        node = node.children[0]
    return str(node)


Position = tuple[int, int]


class _Index:
    """Where each definition is in the file: (what, name, ...) -> positions (line, column), in
    file order; a name defined twice has two."""

    def __init__(self, tree: Tree[Token]) -> None:
        self.at: dict[tuple[str, ...], list[Position]] = {}
        self.speed: str | None = None  # LIN_speed as written
        top = tree.children[0] if tree.children and isinstance(tree.children[0], Tree) else tree
        for section in top.children:
            if not isinstance(section, Tree):
                continue
            self._add(("section", str(section.data)), section)
            walk = getattr(self, f"_{section.data}", None)
            if walk is not None:
                walk(section)

    def first(self, *key: str) -> Position | None:
        found = self.at.get(key)
        return found[0] if found else None

    def _add(self, key: tuple[str, ...], node: Any) -> None:
        if isinstance(node, Token) and node.line is not None and node.column is not None:
            self.at.setdefault(key, []).append((node.line, node.column))
        elif isinstance(node, Tree) and not node.meta.empty:
            self.at.setdefault(key, []).append((node.meta.line, node.meta.column))

    def _header_speed(self, section: Tree[Token]) -> None:
        self.speed = _first_name(section)

    def _nodes(self, section: Tree[Token]) -> None:
        for part in _trees(section):
            names = _trees(part)
            for name in names[:1] if part.data == "nodes_master" else names:
                self._add(("node", _first_name(name)), name)

    def _signals(self, section: Tree[Token]) -> None:
        for definition in _trees(section):
            parts = _trees(definition)
            name = _first_name(parts[0])
            self._add(("signal", name), parts[0])
            self._add(("signal_init", name), parts[2])
            self._add(("signal_publisher", name), parts[3])
            for subscriber in parts[4:]:
                self._add(("signal_subscriber", name, _first_name(subscriber)), subscriber)

    def _diagnostic_signals(self, section: Tree[Token]) -> None:
        for definition in _trees(section):
            parts = _trees(definition)
            name = _first_name(parts[0])
            self._add(("signal", name), parts[0])
            self._add(("signal_init", name), parts[2])

    def _frames(self, section: Tree[Token]) -> None:
        for definition in _trees(section):
            parts = _trees(definition)
            name = _first_name(parts[0])
            self._add(("frame", name), parts[0])
            self._add(("frame_id", name), parts[1])
            self._add(("frame_publisher", name), parts[2])
            if len(parts) == 5:
                self._add(("frame_length", name), parts[3])
            self._frame_signals(name, parts[-1])

    def _frame_signals(self, frame: str, signals: Tree[Token]) -> None:
        for placed in _trees(signals):
            self._add(("frame_signal", frame, _first_name(placed)), placed)

    def _event_triggered_frames(self, section: Tree[Token]) -> None:
        for definition in _trees(section):
            parts = _trees(definition)
            name = _first_name(parts[0])
            self._add(("frame", name), parts[0])
            if len(parts) == 4:
                self._add(("collision_table", name), parts[1])
            self._add(("frame_id", name), parts[-2])
            for frame in _trees(parts[-1]):
                self._add(("associated", name, _first_name(frame)), frame)

    def _sporadic_frames(self, section: Tree[Token]) -> None:
        for definition in _trees(section):
            parts = _trees(definition)
            self._add(("frame", _first_name(parts[0])), parts[0])

    def _diagnostic_frames(self, section: Tree[Token]) -> None:
        for definition in _trees(section):
            parts = _trees(definition)
            name = _first_name(parts[0])
            self._add(("frame", name), parts[0])
            self._add(("frame_id", name), parts[1])
            self._frame_signals(name, parts[2])

    def _node_attributes(self, section: Tree[Token]) -> None:
        for definition in _trees(section):
            parts = _trees(definition)
            name = _first_name(parts[0])
            self._add(("node_attributes", name), parts[0])
            for attribute in parts[1:]:
                self._add(("node_attribute", name, str(attribute.data)), attribute)
                for inner in _trees(attribute):
                    for item in [inner, *_trees(inner)]:
                        if item.data == "ldf_identifier":
                            self._add(("node_attribute_name", name, _first_name(item)), item)

    def _schedule_tables(self, section: Tree[Token]) -> None:
        for definition in _trees(section):
            parts = _trees(definition)
            name = _first_name(parts[0])
            self._add(("schedule_table", name), parts[0])
            for number, entry in enumerate(parts[1:], 1):
                self._add(("schedule_entry", name, str(number)), entry)

    def _signal_encoding_types(self, section: Tree[Token]) -> None:
        for definition in _trees(section):
            parts = _trees(definition)
            name = _first_name(parts[0])
            self._add(("encoding", name), parts[0])
            for number, value in enumerate(parts[1:], 1):
                self._add(("encoding_value", name, str(number)), value)

    def _signal_representations(self, section: Tree[Token]) -> None:
        for definition in _trees(section):
            parts = _trees(definition)
            self._add(("representation", _first_name(parts[0])), parts[0])
            for signal in parts[1:]:
                self._add(("represented", _first_name(signal)), signal)


def _trees(tree: Tree[Token]) -> list[Tree[Token]]:
    return [c for c in tree.children if isinstance(c, Tree)]


# ---- the checks ldfparser does not make (or makes without saying where) ----

_SECTIONS = {
    "nodes": "Nodes section", "signals": "Signals section",
    "diagnostic_signals": "Diagnostic_signals section", "frames": "Frames section",
    "sporadic_frames": "Sporadic_frames section",
    "event_triggered_frames": "Event_triggered_frames section",
    "diagnostic_frames": "Diagnostic_frames section", "node_attributes": "Node_attributes section",
    "schedule_tables": "Schedule_tables section",
    "signal_encoding_types": "Signal_encoding_types section",
    "signal_representations": "Signal_representation section",
    "node_compositions": "composite section", "signal_groups": "Signal_groups section",
    "diagnostic_addresses": "Diagnostic_addresses section",
    "header_lin_description_file": "LIN_description_file statement",
    "header_protocol_version": "LIN_protocol_version statement",
    "header_language_version": "LIN_language_version statement",
    "header_speed": "LIN_speed statement", "header_channel": "Channel_name statement",
    "header_file_revision": "LDF_file_revision statement",
    "header_sig_byte_order_big_endian": "LIN_sig_byte_order_big_endian statement",
    "header_sig_byte_order_little_endian": "LIN_sig_byte_order_little_endian statement",
}  # fmt: skip
_COMMANDS = {
    "assign_nad": "AssignNAD", "conditional_change_nad": "ConditionalChangeNAD",
    "data_dump": "DataDump", "save_configuration": "SaveConfiguration",
    "assign_frame_id_range": "AssignFrameIdRange", "assign_frame_id": "AssignFrameId",
    "unassign_frame_id": "UnassignFrameId", "free_format": "FreeFormat",
}  # fmt: skip


class _Checker:
    def __init__(self, path: Path, json: Mapping[str, Any], index: _Index) -> None:
        self.path = path
        self.json = json
        self.index = index
        self.master = ""
        self.slaves: list[str] = []
        self.nodes: list[str] = []
        self.signals: dict[str, Mapping[str, Any]] = {}  # name -> definition (with "width")
        self.diagnostic_signals: set[str] = set()
        self.frames: dict[str, Mapping[str, Any]] = {}  # unconditional frames
        self.lengths: dict[str, int] = {}
        self.ids: dict[int, str] = {}  # every frame's: unconditional, event-triggered, diagnostic
        self.tables = [t["name"] for t in json.get("schedule_tables") or ()]
        # tables left out, with why (node configuration commands, sporadic frames)
        self.unsupported: dict[str, str] = {}
        self.lin2 = True
        self.language: Any = None

    def error(self, key: tuple[str, ...], reason: str, number: int = 0) -> LdfError:
        """`reason` at the `number`th position of `key` (the file alone if it has none)."""
        found = self.index.at.get(key) or []
        if len(found) > number:
            line, column = found[number]
            return LdfError(f"{self.path}:{line}:{column}: {reason}")
        return LdfError(f"{self.path}: {reason}")

    def check(self) -> None:
        self._duplicates()
        self._header()
        self._nodes()
        self._signals()
        self._frames()
        self._event_triggered_frames()
        self._diagnostic_frames()
        self._node_attributes()
        self._schedules()
        self._encodings()

    def _duplicates(self) -> None:
        kinds = {
            "node": "node", "signal": "signal", "frame": "frame",
            "schedule_table": "schedule table", "encoding": "encoding type",
            "node_attributes": "Node_attributes entry for",
            "represented": "Signal_representation of",
        }  # fmt: skip
        for (what, *name), positions in self.index.at.items():
            if len(positions) < 2 or (what not in kinds and what != "section"):
                continue
            if what == "section":
                shown = _SECTIONS.get(name[0], name[0])
            else:
                shown = f"{kinds[what]} {name[0]}"
            first = positions[0][0]
            reason = (
                f"a second {shown} (the first: line {first}); ldfparser would keep only one of them"
            )
            raise self.error((what, *name), reason, 1)

    def _header(self) -> None:
        statements = (("protocol_version", "LIN_protocol_version", "header_protocol_version"),
                      ("language_version", "LIN_language_version", "header_language_version"),
                      ("speed", "LIN_speed", "header_speed"))  # fmt: skip
        for key, statement, rule in statements:
            if self.json.get(key) is None:
                raise self.error((), f"no {statement} statement")
            if key == "speed":
                bitrate = _bitrate(self.index.speed, int(self.json[key]))
                if not 1_000 <= bitrate <= 20_000:
                    reason = f"LIN_speed {bitrate} bit/s: LIN runs at 1 to 20 kbps"
                    raise self.error(("section", rule), reason)
                continue
            try:
                version = parse_lin_version(self.json[key])
            except ValueError:
                reason = f"{statement} {self.json[key]!r} is not a LIN version ldfparser knows"
                raise self.error(("section", rule), reason) from None
            if key == "protocol_version":
                self.lin2 = _lin2(version)
            else:
                self.language = version

    def _nodes(self) -> None:
        nodes = self.json.get("nodes")
        if nodes is None:
            raise self.error((), "no Nodes section")
        if not nodes.get("master"):
            raise self.error(("section", "nodes"), "the Nodes section names no Master")
        self.master = nodes["master"]["name"]
        self.slaves = list(nodes.get("slaves") or ())
        self.nodes = [self.master, *self.slaves]

    def _not_a_node(self, what: str, node: str) -> str:
        slaves = f"a slave ({', '.join(self.slaves)})" if self.slaves else "a slave (none)"
        return f"{what} {node} is neither the master ({self.master}) nor {slaves}"

    def _signals(self) -> None:
        if self.json.get("signals") is None:
            raise self.error((), "no Signals section")
        for definition in self.json["signals"]:
            name = definition["name"]
            self._width_and_init(name, definition["width"], definition["init_value"])
            if definition["publisher"] not in self.nodes:
                reason = self._not_a_node(f"signal {name}: publisher", definition["publisher"])
                raise self.error(("signal_publisher", name), reason)
            for subscriber in definition["subscribers"]:
                if subscriber not in self.nodes:
                    reason = self._not_a_node(f"signal {name}: subscriber", subscriber)
                    raise self.error(("signal_subscriber", name, subscriber), reason)
            self.signals[name] = definition
        for definition in self.json.get("diagnostic_signals") or ():
            name = definition["name"]
            self._width_and_init(name, definition["width"], definition["init_value"])
            self.signals[name] = definition
            self.diagnostic_signals.add(name)

    def _width_and_init(self, name: str, width: int, init: int | list[int]) -> None:
        where = f"signal {name}"
        if isinstance(init, list):
            if width % 8 or not 8 <= width <= 64:
                reason = (
                    f"{where}: a byte array (its initial value is a list) is 8, 16, .. 64 bits "
                    f"wide, not {width}"
                )
                raise self.error(("signal", name), reason)
            if len(init) != width // 8:
                reason = f"{where}: {len(init)} initial bytes for a {width // 8}-byte array"
                raise self.error(("signal_init", name), reason)
            if any(not 0 <= b <= 0xFF for b in init):
                reason = f"{where}: initial bytes {init} are not all 0..255"
                raise self.error(("signal_init", name), reason)
        elif not 1 <= width <= 16:
            reason = f"{where}: {width} bits wide; a scalar signal is 1 to 16 bits (an array 64)"
            raise self.error(("signal", name), reason)
        elif not 0 <= init < 1 << width:
            limit = (1 << width) - 1
            reason = f"{where}: initial value {init} does not fit its {width} bits (0..{limit})"
            raise self.error(("signal_init", name), reason)

    def _frame_id(self, name: str, frame_id: int, diagnostic: bool = False) -> None:
        key, shown = ("frame_id", name), _hex(frame_id)
        if not 0 <= frame_id <= MAX_ID:
            reason = f"frame {name}: ID {shown} is not a LIN frame ID (0x00..0x{MAX_ID:02X})"
            raise self.error(key, reason)
        if diagnostic and frame_id not in DIAGNOSTIC_IDS:
            reason = (
                f"diagnostic frame {name}: ID {shown}; a diagnostic frame is the master "
                f"request (0x3C) or the slave response (0x3D)"
            )
            raise self.error(key, reason)
        if not diagnostic and frame_id in DIAGNOSTIC_IDS:
            reason = (
                f"frame {name}: ID {shown} belongs to the diagnostic frames (0x3C master "
                f"request, 0x3D slave response)"
            )
            raise self.error(key, reason)
        first = self.ids.setdefault(frame_id, name)
        if first != name:
            position = self.index.first("frame", first)
            line = f", line {position[0]}" if position else ""
            reason = f"frame {name} has ID {shown}, like {first}{line}: IDs must differ"
            raise self.error(key, reason)

    def _layout(
        self,
        frame: str,
        length: int,
        signals: list[Mapping[str, Any]],
        publisher: str | None,
        diagnostic: bool = False,
    ) -> None:
        placed: list[tuple[int, int, str]] = []
        allowed = self.diagnostic_signals if diagnostic else set(self.signals)
        if not diagnostic:
            allowed -= self.diagnostic_signals
        for entry in signals:
            name, offset = entry["signal"], entry["offset"]
            key = ("frame_signal", frame, name)
            if name not in allowed:
                section = "Diagnostic_signals" if diagnostic else "Signals"
                raise self.error(key, f"frame {frame}: no signal {name} in {section}")
            definition = self.signals[name]
            last = offset + definition["width"] - 1
            if offset < 0 or last >= length * 8:
                reason = (
                    f"frame {frame}: signal {name} (bits {offset}..{last}) lies outside the "
                    f"frame's {length} bytes (bits 0..{length * 8 - 1})"
                )
                raise self.error(key, reason)
            if isinstance(definition["init_value"], list) and offset % 8:
                reason = f"frame {frame}: byte array {name} starts at bit {offset}, not a byte"
                raise self.error(key, reason)
            sender = definition.get("publisher", publisher)
            if publisher is not None and sender != publisher:
                reason = f"frame {frame} is published by {publisher}, its signal {name} by {sender}"
                raise self.error(key, reason)
            placed.append((offset, last, name))
        placed.sort()
        for (_, end, before), (start, last, name) in itertools.pairwise(placed):
            if start <= end:
                reason = (
                    f"frame {frame}: signal {name} (bits {start}..{last}) overlaps {before} "
                    f"(up to bit {end})"
                )
                raise self.error(("frame_signal", frame, name), reason)

    def _frames(self) -> None:
        if self.json.get("frames") is None:
            raise self.error((), "no Frames section")
        for frame in self.json["frames"]:
            name, length, frame_id = frame["name"], frame["length"], frame["frame_id"]
            self._frame_id(name, frame_id)
            if length is None:
                if self.language > LinVersion(2, 0):
                    reason = f"frame {name}: no length (LIN 2.1 and later give every frame one)"
                    raise self.error(("frame", name), reason)
                length = 2 if frame_id < 32 else 4 if frame_id < 48 else 8  # LIN 1.3, 2.0
            elif not 1 <= length <= 8:
                reason = f"frame {name}: {length} bytes long; a LIN frame carries 1 to 8"
                raise self.error(("frame_length", name), reason)
            if frame["publisher"] not in self.nodes:
                reason = self._not_a_node(f"frame {name}: publisher", frame["publisher"])
                raise self.error(("frame_publisher", name), reason)
            self._layout(name, length, frame["signals"], frame["publisher"])
            self.frames[name] = frame
            self.lengths[name] = length

    def _event_triggered_frames(self) -> None:
        for frame in self.json.get("event_triggered_frames") or ():
            name, table = frame["name"], frame["collision_resolving_schedule_table"]
            where = f"event-triggered frame {name}"
            self._frame_id(name, frame["frame_id"])
            if table not in self.tables:
                tables = ", ".join(self.tables) or "none"
                reason = f"{where}: no schedule table {table} (tables: {tables})"
                raise self.error(("collision_table", name), reason)
            first = frame["frames"][0]
            for associated in frame["frames"]:
                key = ("associated", name, associated)
                if associated not in self.frames:
                    raise self.error(key, f"{where}: {associated} is not an unconditional frame")
                if self.frames[associated]["publisher"] == self.master:
                    reason = (
                        f"{where}: {associated} is published by the master; the responses to "
                        f"an event-triggered frame come from slaves"
                    )
                    raise self.error(key, reason)
                if self.lengths[associated] != self.lengths[first]:
                    reason = (
                        f"{where}: {associated} is {self.lengths[associated]} bytes long, "
                        f"{first} {self.lengths[first]}; they must be one length"
                    )
                    raise self.error(key, reason)
                signals = self.frames[associated]["signals"]
                in_pid = [s["signal"] for s in signals if s["offset"] < 8]
                if self.lin2 and in_pid:
                    reason = (
                        f"{where}: {associated} carries {in_pid[0]} in its first byte, which "
                        f"carries the protected ID when it answers the event-triggered frame "
                        f"(LIN 2.x)"
                    )
                    raise self.error(key, reason)

    def _diagnostic_frames(self) -> None:
        for frame in self.json.get("diagnostic_frames") or ():
            name = frame["name"]
            self._frame_id(name, frame["frame_id"], diagnostic=True)
            self._layout(name, 8, frame["signals"], None, diagnostic=True)

    def _node_attributes(self) -> None:
        attributes = {n["name"]: n for n in self.json.get("node_attributes") or ()}
        frames = {*self.frames, *self.ids.values()}
        frames.update(f["name"] for f in self.json.get("sporadic_frames") or ())
        for name, node in attributes.items():
            key = ("node_attributes", name)
            if name not in self.slaves:
                slaves = ", ".join(self.slaves) or "none"
                reason = f"Node_attributes for {name}, which is not a slave (slaves: {slaves})"
                raise self.error(key, reason)
            for attribute, statement in (("lin_protocol", "LIN_protocol"),
                                         ("configured_nad", "configured_NAD")):  # fmt: skip
                if node.get(attribute) is None:
                    raise self.error(key, f"node {name}: no {statement}")
            try:
                parse_lin_version(node["lin_protocol"])
            except ValueError:
                reason = f"node {name}: LIN_protocol {node['lin_protocol']!r} is not a LIN version"
                raise self.error(key, reason) from None
            if node.get("product_id") is None and self.language >= LinVersion(2, 1):
                reason = f"node {name}: no product_id (LIN 2.1 and later require one)"
                raise self.error(key, reason)
            named = [node.get("response_error"), *(node.get("fault_state_signals") or ())]
            for signal in filter(None, named):
                if signal not in self.signals or signal in self.diagnostic_signals:
                    reason = f"node {name}: no signal {signal}"
                    raise self.error(("node_attribute_name", name, signal), reason)
            for frame in node.get("configurable_frames") or ():
                if frame not in frames:
                    reason = f"node {name}: configurable frame {frame} is not a frame"
                    raise self.error(("node_attribute_name", name, frame), reason)
        if self.language >= LinVersion(2, 0):
            for slave in self.slaves:
                if slave not in attributes:
                    reason = f"slave {slave} has no Node_attributes entry (LIN 2.x requires one)"
                    raise self.error(("node", slave), reason)

    def _schedules(self) -> None:
        sporadic = {f["name"] for f in self.json.get("sporadic_frames") or ()}
        frames = list(dict.fromkeys([*self.frames, *self.ids.values()]))
        for table in self.json.get("schedule_tables") or ():
            for number, entry in enumerate(table["schedule"], 1):
                key = ("schedule_entry", table["name"], str(number))
                where = f"schedule table {table['name']}, entry {number}"
                command = entry["command"]
                frame = command.get("frame")
                if command["type"] in _COMMANDS or frame in sporadic:
                    what = _COMMANDS.get(command["type"], f"{frame}, a sporadic frame,")
                    reason = f"{where}: {what} is not supported (only frames, MasterReq, SlaveResp)"
                    self.unsupported.setdefault(table["name"], str(self.error(key, reason)))
                    continue
                if command["type"] == "frame" and frame not in frames:
                    close = difflib.get_close_matches(frame, frames, n=3)
                    hint = f"; did you mean {', '.join(close)}?" if close else ""
                    raise self.error(key, f"{where}: no frame named {frame}{hint}")
                if not entry["delay"] > 0:
                    reason = f"{where}: delay {entry['delay'] * 1000:g} ms; a slot needs time"
                    raise self.error(key, reason)

    def _encodings(self) -> None:
        encodings = {e["name"]: e for e in self.json.get("signal_encoding_types") or ()}
        for name, encoding in encodings.items():
            for number, value in enumerate(encoding["values"], 1):
                if value["type"] == "physical" and value["min"] > value["max"]:
                    reason = (
                        f"encoding {name}: physical_value raw range {value['min']}.."
                        f"{value['max']} runs backwards"
                    )
                    raise self.error(("encoding_value", name, str(number)), reason)
        for representation in self.json.get("signal_representations") or ():
            encoding = representation["encoding"]
            if encoding not in encodings:
                reason = f"Signal_representation: no encoding type {encoding}"
                raise self.error(("representation", encoding), reason)
            for signal in representation["signals"]:
                if signal not in self.signals or signal in self.diagnostic_signals:
                    reason = f"Signal_representation {encoding}: no signal {signal}"
                    raise self.error(("represented", signal), reason)


def _unexplained(path: Path, index: _Index, err: Exception) -> LdfError:
    """ldfparser's own exception for what the checks do not catch, at the first definition the
    message names, if any."""
    message = str(err) or type(err).__name__
    for word in re.findall(r"[A-Za-z_]\w*", message):
        for what in ("frame", "signal", "node", "node_attributes", "schedule_table", "encoding"):
            position = index.first(what, word)
            if position is not None:
                return LdfError(f"{path}:{position[0]}:{position[1]}: ldfparser cannot load it: "
                                f"{message}")  # fmt: skip
    return LdfError(f"{path}: ldfparser cannot load it: {message}")
