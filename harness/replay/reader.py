"""Bus traces in, one frame at a time, in every format python-can's `LogReader` reads.

Frames stream from the file: a trace of any length is never held in memory. A file the
reader cannot make sense of raises `TraceError` naming the file, the line (text formats) or
record and byte offset (binary formats), and the reason.
"""

from __future__ import annotations

import gzip
import importlib.util
import itertools
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import can
from can.io.generic import TextIOMessageReader
from can.io.player import MESSAGE_READERS
from can.util import dlc2len

from harness.errors import HarnessError
from harness.frames.can import CanFrame, FrameError


class TraceError(HarnessError):
    """A trace file that cannot be read, or a frame in it that no controller could send."""


@dataclass(frozen=True, slots=True)
class TraceFrame:
    time_s: float  # as recorded
    channel: int | str | None  # as recorded (python-can: ASC/BLF channels count from 0)
    frame: CanFrame
    is_rx: bool


def formats() -> list[str]:
    return sorted(MESSAGE_READERS)


def trace_suffix(path: Path) -> str:
    """The suffix that names a trace's format, lower case: `.asc` for `drive.ASC.gz`."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes[-1:] == [".gz"]:
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


class _CountingLines:
    """A text file that counts the lines a reader has taken, for error messages."""

    def __init__(self, file: IO[str]) -> None:
        self._file = file
        self.line = 0
        self.last = ""  # the last line read, as it was (with its newline, if it had one)
        self.name = getattr(file, "name", "")

    def __iter__(self) -> _CountingLines:
        return self

    def __next__(self) -> str:
        self.last = next(self._file)
        self.line += 1
        return self.last

    def readline(self) -> str:
        text = self._file.readline()
        if text:
            self.line += 1
            self.last = text
        return text

    @property
    def closed(self) -> bool:
        return self._file.closed

    def close(self) -> None:
        self._file.close()


_ASC_MESSAGE_LINE = re.compile(r"\s*\d+\.\d+\s+(?:\d+|CANFD)\s")
_ASC_HEADER_END = re.compile(r"\s*(?:no\s+)?internal\s+events", re.I)
_ASC_TRIGGERBLOCK = re.compile(r"\s*begin\s+triggerblock", re.I)
_ASC_RELATIVE = re.compile(r"\s*base\s+(?:hex|dec)\s+timestamps\s+relative", re.I)
_ASC_EVENT_TIME = re.compile(r"\s*(\d+\.\d+)\s")
_ASC_EDL = 0x1000  # CANFD line flags: Extended Data Length, i.e. an FD frame


class _AscLines(_CountingLines):
    """python-can's ASC reader ends its header at the first line it does not know, and that
    line is lost: in an export with no 'Begin Triggerblock' (nor 'internal events logged'),
    the first frame. A header-ending line is handed to it just before the first frame."""

    def __init__(self, file: IO[str]) -> None:
        super().__init__(file)
        self.has_triggerblock = False
        # "timestamps relative": each event's time counts from the previous event's, any
        # event (python-can reads them as absolute); `clock_s` is the current line's time.
        self.relative = False
        self.clock_s = 0.0
        self._header_ended = False
        self._held: str | None = None

    def __next__(self) -> str:
        if self._held is not None:
            text, self._held = self._held, None
        else:
            text = self._file.readline()
            if not text:
                raise StopIteration
            if not self.has_triggerblock and _ASC_TRIGGERBLOCK.match(text):
                self.has_triggerblock = self._header_ended = True
            elif not self._header_ended:
                if _ASC_RELATIVE.match(text):
                    self.relative = True
                if _ASC_HEADER_END.match(text):
                    self._header_ended = True
                elif _ASC_MESSAGE_LINE.match(text):
                    self._header_ended = True
                    self._held = text
                    return "no internal events logged\n"  # not a line of the file: not counted
        self.line += 1
        self.last = text
        if self.relative and (stamp := _ASC_EVENT_TIME.match(text)):
            self.clock_s += float(stamp.group(1))
        return text

    def readline(self) -> str:
        try:
            return next(self)
        except StopIteration:
            return ""


def _check_asc(path: Path, msg: can.Message, lines: _AscLines) -> None:
    if (problem := _asc_data_problem(lines.last, len(msg.data))) is not None:
        raise TraceError(f"{path}: line {lines.line}: {problem}")
    _asc_classic_on_fd(msg, lines.last)
    if lines.relative:
        msg.timestamp = lines.clock_s


_HEX_BYTE = re.compile(r"[0-9A-Fa-f]{2}")
ASC_FD_TRAILERS = (0, 7, 8)  # fields after a CANFD line's data: none, or Vector's 8 (python-can's
# own sample files also have 7): duration, length, flags, CRC, bit timings


@dataclass(frozen=True, slots=True)
class AscFdLine:
    """The fields of a `CANFD` frame line that the layout gives away: `<time> CANFD <channel>
    <dir> <id> [<name>] <brs> <esi> <dlc> <length> <data...> <trailer...>`."""

    channel: str
    length: int  # the data length field
    trailer_count: int  # fields after `length` data bytes (negative: the line is too short)
    trailer: list[str]  # those fields: duration, length, flags, CRC, bit timings (Vector)


def asc_fd_line(line: str) -> AscFdLine | None:
    """A `CANFD` frame line's layout; None for any other line (error frames included)."""
    tokens = line.split()
    if len(tokens) < 10 or tokens[1] != "CANFD" or tokens[4].lower().startswith("error"):
        return None
    first = 5 if tokens[5].isdigit() else 6  # after the ID, an optional symbolic name
    if len(tokens) <= first + 3 or not tokens[first + 3].isdigit():
        return None
    length = int(tokens[first + 3])
    start = first + 4 + length
    return AscFdLine(tokens[2], length, len(tokens) - start, tokens[start:])


def _asc_data_problem(line: str, taken: int) -> str | None:
    """python-can takes as many data bytes as the line's length field says and ignores the
    rest: a line with fewer bytes gets its trailing fields read as data, one with more loses
    them. Both are broken lines. `taken`: the bytes python-can took."""
    if (fd := asc_fd_line(line)) is not None:
        if fd.trailer_count not in ASC_FD_TRAILERS:
            return (f"a CANFD line whose data does not match its length ({fd.length} bytes): "
                    f"{fd.trailer_count} fields after the data, expected 8")  # fmt: skip
        return None
    tokens = line.split()
    for kind in ("d", "D"):
        if kind in tokens[3:6]:
            at = tokens.index(kind, 3)
            listed = len(list(itertools.takewhile(_HEX_BYTE.fullmatch, tokens[at + 2 :])))
            if listed > taken:
                return (f"{listed} data bytes on a classic CAN line with DLC {tokens[at + 1]}: "
                        f"python-can would read {taken} of them")  # fmt: skip
    return None


def _asc_classic_on_fd(msg: can.Message, line: str) -> None:
    # CAN FD has no remote frames; other classic frames show in the flags (no EDL bit). Only
    # a frame that fits a classic one can be one: a line with more than 8 bytes, or the BRS
    # column set, is an FD frame whatever its flags column says (python-can's own sample
    # files have such lines). A classic frame has no ESI bit: the ESI column of a classic
    # remote frame is the sender's error state, not part of the frame.
    if not msg.is_fd:
        return
    fits_classic = len(msg.data) <= 8 and not msg.bitrate_switch
    if msg.is_remote_frame or (fits_classic and asc_frame_is_fd(line) is False):
        msg.is_fd = msg.bitrate_switch = msg.error_state_indicator = False


def asc_frame_is_fd(line: str) -> bool | None:
    """Whether a `CANFD` line of an ASC file holds an FD frame, from its flags' EDL bit (a CAN FD
    channel also carries classic frames); None if the line has no flags column."""
    fd = asc_fd_line(line)
    try:
        flags = int(fd.trailer[2], 16) if fd is not None else None
    except (IndexError, ValueError):
        return None
    return None if flags is None else bool(flags & _ASC_EDL)


def read_trace(path: str | Path) -> Iterator[TraceFrame]:
    """The frames of a trace file, in file order. Error frames (bus events) are skipped."""
    path = Path(path)
    if path.is_dir():
        raise TraceError(f"{path}: is a directory, not a trace file")
    if not path.is_file():
        raise TraceError(f"{path}: no such trace file")
    compressed = path.suffix.lower() == ".gz"
    suffix = trace_suffix(path)
    reader_type = MESSAGE_READERS.get(suffix)
    if reader_type is None:
        raise TraceError(f"{path}: unknown trace format {suffix or '(no suffix)'!r}; python-can "
                         f"reads {', '.join(formats())} (optionally .gz)")  # fmt: skip
    if suffix == ".mf4" and importlib.util.find_spec("asammdf") is None:
        raise TraceError(
            f"{path}: MF4 needs python-can's mf4 extra (pip install 'python-can[mf4]')"
        )
    if suffix == ".db":
        yield from _frames(path, can.SqliteReader(str(path)), lambda n: f"record {n}")
        return
    text = issubclass(reader_type, TextIOMessageReader)
    opener: Any = gzip.open if compressed else open
    if text:
        with opener(path, "rt", encoding="utf-8", errors="replace", newline=None) as raw:
            counted = _AscLines(raw) if suffix == ".asc" else _CountingLines(raw)
            reader = _open_reader(path, reader_type, counted, lambda: f"line {counted.line}")

            def check(msg: can.Message) -> None:
                if isinstance(counted, _AscLines):
                    _check_asc(path, msg, counted)
                elif suffix == ".log":
                    _check_candump_data(path, counted)
                if suffix != ".trc" and not counted.last.endswith("\n"):
                    _check_text_complete(path, suffix, counted)  # a line cut short: say so

            yield from _frames(path, reader, lambda _n: f"line {counted.line}", check)
            _check_text_complete(path, suffix, counted)
        return
    with opener(path, "rb") as raw:
        offset = [0]

        def where(n: int) -> str:
            if not raw.closed:
                offset[0] = raw.tell()
            return f"record {n}, byte {offset[0]}"

        reader = _open_reader(path, reader_type, raw, lambda: "the file header")
        if not compressed:
            _check_blf_size(path, reader)
        yield from _frames(path, reader, where)


def _open_reader(path: Path, reader_type: type, file: Any, where: Any) -> Any:
    try:
        return reader_type(file=file)
    except Exception as err:  # python-can raises many kinds; name them all
        raise TraceError(f"{path}: {where()}: not a valid {path.suffix} trace "
                         f"({type(err).__name__}: {err})") from err  # fmt: skip


class _SkippedRecords(logging.Handler):
    """python-can's readers log and skip some records they cannot parse; we stop there."""

    def __init__(self, where: Callable[[], str]) -> None:
        super().__init__(logging.WARNING)
        self.where = where
        self.problem: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.problem is None:
            self.problem = f"{self.where()}: {record.getMessage()}"


def _frames(
    path: Path,
    reader: Any,
    where: Callable[[int], str],
    check: Callable[[can.Message], None] | None = None,
) -> Iterator[TraceFrame]:
    """`check` sees each message with its line still current: it may correct or refuse it."""
    count = 0
    messages = iter(reader)
    skipped = _SkippedRecords(lambda: where(count + 1))
    io_log = logging.getLogger("can.io")
    while True:
        io_log.addHandler(skipped)
        try:
            msg = next(messages)
        except StopIteration:
            return
        except Exception as err:
            raise TraceError(f"{path}: {where(count + 1)}: cannot parse "
                             f"({type(err).__name__}: {err or 'truncated'})") from err  # fmt: skip
        finally:
            io_log.removeHandler(skipped)
        if skipped.problem is not None:
            raise TraceError(f"{path}: {skipped.problem}")
        count += 1
        if msg.is_error_frame:
            continue
        if not msg.is_fd and len(msg.data) > 8:
            msg.is_fd = True  # CSV and SQLite traces do not store the FD flag; the length shows it
        if check is not None:
            check(msg)
        # A line with fewer (or more) data bytes than its DLC says was cut or mangled: python-can
        # passes on the bytes it found. (A classic DLC of 9..15 means 8 bytes; python-can's
        # readers give an FD frame's DLC as its length, except TRC's, which gives the code.)
        stated = min(msg.dlc, 8) if not msg.is_fd else msg.dlc
        if msg.is_fd and stated != len(msg.data) and stated <= 15:
            stated = dlc2len(stated)
        if not msg.is_remote_frame and stated != len(msg.data):
            raise TraceError(f"{path}: {where(count)}: the DLC says {stated} data bytes, the "
                             f"record has {len(msg.data)}")  # fmt: skip
        try:
            frame = CanFrame.from_message(msg)
        except (FrameError, TypeError, ValueError) as err:
            raise TraceError(f"{path}: {where(count)}: {err}") from err
        yield TraceFrame(msg.timestamp, msg.channel, frame, msg.is_rx)


_CANDUMP_DATA = re.compile(r"#(#[0-9A-Fa-f])?([0-9A-Fa-f]*)")


def _check_candump_data(path: Path, lines: _CountingLines) -> None:
    """python-can reads `123#ABC` as two bytes: an odd number of hex digits is a broken line."""
    match = _CANDUMP_DATA.search(lines.last)
    if match and len(match.group(2)) % 2:
        raise TraceError(f"{path}: line {lines.line}: odd number of hex digits in the data "
                         f"({match.group(2)!r})")  # fmt: skip


def _check_blf_size(path: Path, reader: Any) -> None:
    """BLF headers state the file size; a shorter file was cut off (python-can stops quietly)."""
    expected = getattr(reader, "file_size", None)
    actual = path.stat().st_size
    if expected is not None and actual < expected:
        raise TraceError(f"{path}: truncated: the header says {expected} bytes, the file has "
                         f"{actual}")  # fmt: skip


def _check_text_complete(path: Path, suffix: str, lines: _CountingLines) -> None:
    """A cut-off text trace ends mid-line (python-can skips or shortens such a line), and an
    ASC file that opened a trigger block without closing it was not written to the end. A TRC
    line states its length (DLC), so a last line without a newline is a whole one."""
    if lines.last and not lines.last.endswith("\n") and suffix != ".trc":
        raise TraceError(f"{path}: line {lines.line}: truncated (the file ends mid-line)")
    triggerblock = isinstance(lines, _AscLines) and lines.has_triggerblock
    if triggerblock and lines.last.strip().lower() != "end triggerblock":
        raise TraceError(f"{path}: line {lines.line}: truncated: no 'End TriggerBlock' line at "
                         f"the end")  # fmt: skip
