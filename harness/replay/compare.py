"""Compare two traces by what they mean: DBC signal values within tolerances, frames in timing
windows, ignoring what the user masks (alive counters, CRCs, whole messages).

Each occurrence of a message in the reference is paired with the nearest unpaired occurrence
of the same message on the same channel in the candidate within `window_ms`. Both traces are
read on one clock, the reference's (a replay's output keeps its input's time base): times
count from the reference's first frame in both, so neither an early frame of another message
nor a reference that is a window of the candidate can shift the comparison. Traces whose
clocks are unrelated (python-can's ASC writer counts from its first frame) need
`align_first=True`: each trace then counts from its own first compared frame; when the
traces start more than a second apart the result suggests it. Unpaired reference
frames are "missing", unpaired candidate frames "extra"; paired frames whose signals differ
beyond their tolerance are "value"
differences, and paired frames sent differently (data length, CAN FD or classic, BRS, remote)
are "format" differences. IDs the DBC does not know are compared by their raw bytes and named
by their ID as `harness.frames.ids` writes it (0x123, 0x123x for extended); a standard and an
extended ID are different messages.

Channels: frames pair only within the same channel (python-can's numbering: ASC/BLF channel 1
is 0). `ignore_channels=True` pairs across channels (two recordings of one bus numbered
differently); so does a trace in a format that records no channel (python-can's CSV).

Nothing compared is not equal: a reference with no frames in scope (an empty trace, every
frame masked, messages the reference does not carry) gives `equal == False`. `messages`
must name DBC messages or be IDs; anything else raises `CompareError`.

Both files stream; only one message's pending occurrences are held at a time per ID.
"""

from __future__ import annotations

import difflib
import fnmatch
import itertools
import math
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.dbc import Dbc
from harness.errors import HarnessError
from harness.frames.can import CanFrame
from harness.frames.ids import format_id, id_key, parse_id
from harness.replay.reader import TraceFrame, read_trace

Channel = int | str | None


SAME_CLOCK_S = 1.0  # traces whose first frames are further apart get the --align-first hint


class CompareError(HarnessError):
    """A comparison that cannot be made as asked: an unknown message, a negative window."""


@dataclass(frozen=True)
class FrameFormat:
    """How a frame was sent, apart from its ID and data."""

    length: int  # data bytes (a remote frame: the DLC it requests)
    is_fd: bool
    brs: bool
    is_remote: bool = False

    @classmethod
    def of(cls, frame: CanFrame) -> FrameFormat:
        length = frame.remote_length if frame.is_remote else len(frame.data)
        return cls(length, frame.is_fd, frame.brs, frame.is_remote)

    def __str__(self) -> str:
        if self.is_remote:
            return f"remote frame, DLC {self.length}"
        kind = "classic CAN"
        if self.is_fd:
            kind = "CAN FD with BRS" if self.brs else "CAN FD without BRS"
        return f"{kind}, {self.length} bytes"


@dataclass(frozen=True)
class Occurrence:
    time_s: float  # relative to the trace's first frame
    key: str  # message name, or the raw ID as format_id writes it (0x123, 0x123x)
    values: Mapping[str, Any]
    channel: Channel = None  # as recorded
    format: FrameFormat | None = None


@dataclass(frozen=True)
class Difference:
    kind: str  # "missing", "extra", "value", "format"
    key: str
    time_s: float
    detail: str
    channel: Channel = None  # set when the traces carry more than one channel

    def __str__(self) -> str:
        where = f" on channel {self.channel}" if self.channel is not None else ""
        return f"{self.time_s * 1e3:10.3f} ms  {self.kind:<7} {self.key}{where}: {self.detail}"


@dataclass
class Comparison:
    reference: Path
    candidate: Path
    compared: int = 0  # paired occurrences
    differences: list[Difference] = field(default_factory=list)
    total_differences: int = 0
    reference_frames: int = 0  # reference occurrences in scope (selected, not masked)
    nothing_compared: str = ""  # why, when reference_frames == 0
    notes: list[str] = field(default_factory=list)  # hints and how channels were paired

    @property
    def empty(self) -> bool:
        """Nothing was compared: the reference has no frames in scope."""
        return self.reference_frames == 0

    @property
    def equal(self) -> bool:
        return self.total_differences == 0 and not self.empty

    def report(self, limit: int = 20) -> str:
        head = (f"{self.reference} vs {self.candidate}: {self.compared} frames paired, "
                f"{self.total_differences} differences")  # fmt: skip
        if self.empty:
            head += f" - NOT equal: nothing compared ({self.nothing_compared or 'no frames'})"
        elif self.equal:
            head += " - equal"
        lines = [head, *(str(d) for d in self.differences[:limit])]
        more = self.total_differences - min(limit, len(self.differences))
        if more > 0:
            lines.append(f"... and {more} more")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _peek(path: Path) -> tuple[Iterator[TraceFrame], bool, float | None]:
    """The trace's records, whether it records channels (its first frame has one), and its
    first timestamp."""
    records = read_trace(path)
    first = next(records, None)
    if first is None:
        return iter(()), True, None
    return itertools.chain([first], records), first.channel is not None, first.time_s


class _Scan:
    """Counts a trace's records as they stream by."""

    def __init__(self) -> None:
        self.records = 0
        self.keys: set[str] = set()  # messages compared (selected, not masked)


def _occurrences(records: Iterator[TraceFrame], dbc: Dbc | None, masked: list[str],
                 messages: set[str] | None, scan: _Scan,
                 origin: float | None) -> Iterator[Occurrence]:  # fmt: skip
    """Times count from `origin`; None: from the first occurrence yielded."""
    for record in records:
        scan.records += 1
        frame = record.frame
        decoded = dbc.decode(frame) if dbc is not None else None
        values: dict[str, Any]
        if decoded is not None and decoded.problem is not None:
            key, values = decoded.name, {"data": frame.data.hex()}  # undecodable: raw
        elif decoded is not None:
            key = decoded.name
            values = {
                name: value for name, value in decoded.signals.items()
                if not _masked(f"{key}.{name}", masked)
            }  # fmt: skip
        else:
            key = format_id(id_key(frame.arbitration_id, frame.is_extended))
            values = {"data": frame.data.hex()}
        if _masked(key, masked) or (messages is not None and key not in messages):
            continue
        origin = record.time_s if origin is None else origin
        scan.keys.add(key)
        yield Occurrence(record.time_s - origin, key, values, record.channel,
                         FrameFormat.of(frame))  # fmt: skip


def _masked(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def selected_messages(messages: Iterable[str], dbc: Dbc | None) -> set[str]:
    """The keys occurrences are named by, for `messages`: DBC message names, or IDs in
    `harness.frames.ids` syntax (0x300 standard, 0x300x extended; an ID the DBC knows
    selects its message). Raises CompareError for anything else, with a did-you-mean."""
    keys: set[str] = set()
    by_id = {id_key(m.frame_id, m.is_extended_frame): m.name
             for m in (dbc.database.messages if dbc is not None else [])}  # fmt: skip
    for text in messages:
        if dbc is not None and text in dbc.names:
            keys.add(text)
            continue
        try:
            key = parse_id(text)
        except ValueError:
            if dbc is None:
                raise CompareError(
                    f"unknown message {text!r}: message names need a DBC (--dbc); without "
                    "one, select by ID: 0x300 (standard) or 0x300x (extended)"
                ) from None
            close = difflib.get_close_matches(text, dbc.names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise CompareError(f"unknown message {text!r}: {dbc.source} has no message of "
                               f"that name and it is not an ID (0x300, 0x300x){hint}") from None
        keys.add(by_id.get(key, format_id(key)))
    return keys


def compare_traces(
    reference: str | Path,
    candidate: str | Path,
    *,
    dbc: Dbc | None = None,
    window_ms: float = 5.0,
    tolerances: Mapping[str, float] | None = None,
    mask: Iterable[str] = (),
    messages: Iterable[str] | None = None,
    whole: bool = False,
    ignore_channels: bool = False,
    align_first: bool = False,
    keep: int = 1000,
) -> Comparison:
    """`tolerances`: "Message.Signal" (glob patterns allowed) -> absolute tolerance.
    `mask`: "Message" or "Message.Signal" patterns to ignore. `messages`: compare only these
    (DBC names or IDs, see `selected_messages`). The reference's time span is compared;
    `whole=True` also reports candidate frames after it. `ignore_channels=True` pairs frames
    across channels. `align_first=True` counts each trace's time from its own first compared
    frame instead of the reference's first frame. At most `keep` differences are kept (all
    are counted)."""
    reference, candidate = Path(reference), Path(candidate)
    if not math.isfinite(window_ms) or window_ms < 0:
        raise CompareError(f"the timing window must be 0 ms or more, not {window_ms}")
    tol = dict(sorted((tolerances or {}).items(), key=lambda item: _specificity(item[0])))
    for pattern, limit in tol.items():
        if not math.isfinite(limit) or limit < 0:
            raise CompareError(f"tolerance {pattern}={limit}: must be a number, 0 or more")
    result = Comparison(reference, candidate)
    window = window_ms / 1e3
    masked = list(mask)
    wanted = selected_messages(messages, dbc) if messages is not None else None
    pending: dict[tuple[Channel, str], deque[Occurrence]] = {}  # candidate occurrences unpaired
    ref_records, ref_channels, ref_start = _peek(reference)
    cand_records, cand_channels, cand_start = _peek(candidate)
    origin = None if align_first else ref_start
    if origin is not None and cand_start is not None and abs(cand_start - origin) > SAME_CLOCK_S:
        result.notes.append(f"the candidate starts {cand_start - origin:+.3f} s from the "
                            "reference; if their clocks are unrelated, use --align-first "
                            "(align_first=True)")  # fmt: skip
    by_channel = not ignore_channels and ref_channels and cand_channels
    if not ignore_channels and ref_channels != cand_channels:
        side = "reference" if not ref_channels else "candidate"
        result.notes.append(f"the {side}'s format records no channels: frames pair across "
                            "channels")  # fmt: skip
    channels: set[Channel] = set()
    unpaired: dict[str, tuple[set[Channel], set[Channel]]] = {}  # key: missing, extra channels

    def slot(o: Occurrence) -> tuple[Channel, str]:
        return (o.channel if by_channel else None), o.key

    def found(kind: str, o: Occurrence, detail: str) -> None:
        result.total_differences += 1
        if kind in ("missing", "extra"):
            unpaired.setdefault(o.key, (set(), set()))[kind == "extra"].add(o.channel)
        if len(result.differences) < keep:
            result.differences.append(Difference(kind, o.key, o.time_s, detail, o.channel))

    ref_scan, cand_scan = _Scan(), _Scan()
    cand = _occurrences(cand_records, dbc, masked, wanted, cand_scan, origin)
    cand_next = next(cand, None)
    end = 0.0
    for ref in _occurrences(ref_records, dbc, masked, wanted, ref_scan, origin):
        result.reference_frames += 1
        channels.add(ref.channel)
        end = ref.time_s
        # Read the candidate up to this reference frame's window end.
        while cand_next is not None and cand_next.time_s <= ref.time_s + window:
            channels.add(cand_next.channel)
            pending.setdefault(slot(cand_next), deque()).append(cand_next)
            cand_next = next(cand, None)
        queue = pending.get(slot(ref))
        while queue and queue[0].time_s < ref.time_s - window:  # too early for any reference
            early = queue.popleft()
            if whole or early.time_s >= -window:  # before the reference's span: not compared
                found("extra", early, "not in the reference")
        if not queue:
            found("missing", ref, f"no frame within {window_ms} ms in the candidate")
            continue
        match = min(queue, key=lambda o: abs(o.time_s - ref.time_s))  # the nearest in time
        queue.remove(match)
        result.compared += 1
        if match.format != ref.format:
            found("format", ref, f"{match.format} in the candidate; {ref.format} in the reference")
        for detail in _value_differences(ref, match, tol):
            found("value", ref, detail)
    while cand_next is not None and (whole or cand_next.time_s <= end + window):
        channels.add(cand_next.channel)
        pending.setdefault(slot(cand_next), deque()).append(cand_next)
        cand_next = next(cand, None)
    for queue in pending.values():
        for extra in queue:
            if whole or extra.time_s <= end + window:
                found("extra", extra, "not in the reference")
    if not result.compared and result.reference_frames and cand_scan.keys & ref_scan.keys:
        result.notes.append("no frame paired although both traces carry the same messages: "
                            "if they are offset in time, --align-first (align_first=True) "
                            "aligns them")  # fmt: skip
    if wanted is not None and (absent := wanted - ref_scan.keys - cand_scan.keys):
        result.notes.append(f"selected but in neither trace: {', '.join(sorted(absent))}")
    if not by_channel or len(channels) < 2:  # one channel: naming it says nothing
        result.differences = [replace(d, channel=None) for d in result.differences]
    result.differences.sort(key=lambda d: d.time_s)
    if by_channel:
        crossed = sorted(k for k, (miss, more) in unpaired.items() if miss - more and more - miss)
        if crossed:
            result.notes.append(f"{', '.join(crossed)}: missing on one channel and extra on "
                                "another; if the traces number the bus differently, compare "
                                "with --ignore-channels (ignore_channels=True)")  # fmt: skip
    if result.empty:
        result.nothing_compared = _why_empty(ref_scan.records, wanted, masked)
    return result


def _why_empty(records: int, wanted: set[str] | None, masked: list[str]) -> str:
    if records == 0:
        return "the reference has no frames"
    scope = []
    if wanted is not None:
        scope.append(f"messages {', '.join(sorted(wanted))}")
    if masked:
        scope.append(f"masks {', '.join(masked)}")
    return f"none of the reference's {records} frames is in scope ({'; '.join(scope) or '?'})"


def _specificity(pattern: str) -> tuple[bool, int]:
    """Tolerances apply most specific first: an exact name, then the pattern with the most
    literal characters ('LightStatus.Supply*' before '*')."""
    wild = any(c in pattern for c in "*?[")
    return wild, -sum(c not in "*?[]" for c in pattern)


def _value_differences(ref: Occurrence, cand: Occurrence, tol: dict[str, float]) -> Iterator[str]:
    for name in sorted(set(ref.values) | set(cand.values)):
        a, b = ref.values.get(name), cand.values.get(name)
        if a == b:
            continue
        if isinstance(a, int | float) and isinstance(b, int | float):
            limit = next((t for p, t in tol.items() if fnmatch.fnmatchcase(f"{ref.key}.{name}", p)),
                         0.0)  # fmt: skip
            # a decimal tolerance is not exact in binary: 13.8 - 13.5 is 0.3000000000000007
            if abs(a - b) <= limit + 1e-9 * max(1.0, abs(a), abs(b)):
                continue
            yield f"{name} = {b} in the candidate, {a} in the reference (tolerance {limit})"
        else:
            yield f"{name} = {b!r} in the candidate, {a!r} in the reference"
