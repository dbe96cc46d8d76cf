"""Compare two traces by what they mean: DBC signal values within tolerances, frames in timing
windows, ignoring what the user masks (alive counters, CRCs, whole messages).

Each occurrence of a message in the reference is paired with the nearest unpaired occurrence
of the same message in the candidate within `window_ms` (times relative to each trace's first
frame). Unpaired reference frames are "missing", unpaired candidate frames "extra"; paired
frames whose signals differ beyond their tolerance are "value" differences. IDs the DBC does
not know are compared by their raw bytes. Both files stream; only one message's pending
occurrences are held at a time per ID.
"""

from __future__ import annotations

import fnmatch
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.dbc import Dbc
from harness.replay.reader import read_trace


@dataclass(frozen=True)
class Occurrence:
    time_s: float  # relative to the trace's first frame
    key: str  # message name, or the raw ID as hex
    values: Mapping[str, Any]


@dataclass(frozen=True)
class Difference:
    kind: str  # "missing", "extra", "value"
    key: str
    time_s: float
    detail: str

    def __str__(self) -> str:
        return f"{self.time_s * 1e3:10.3f} ms  {self.kind:<7} {self.key}: {self.detail}"


@dataclass
class Comparison:
    reference: Path
    candidate: Path
    compared: int = 0  # paired occurrences
    differences: list[Difference] = field(default_factory=list)
    total_differences: int = 0

    @property
    def equal(self) -> bool:
        return self.total_differences == 0

    def report(self, limit: int = 20) -> str:
        head = (f"{self.reference} vs {self.candidate}: {self.compared} frames paired, "
                f"{self.total_differences} differences")  # fmt: skip
        if self.equal:
            return head + " - equal"
        shown = "\n".join(str(d) for d in self.differences[:limit])
        more = self.total_differences - min(limit, len(self.differences))
        return head + "\n" + shown + (f"\n... and {more} more" if more > 0 else "")


def _occurrences(path: Path, dbc: Dbc | None, masked: list[str],
                 messages: set[str] | None) -> Iterator[Occurrence]:  # fmt: skip
    first: float | None = None
    for record in read_trace(path):
        first = record.time_s if first is None else first
        decoded = dbc.decode(record.frame) if dbc is not None else None
        values: dict[str, Any]
        if decoded is not None and decoded.problem is not None:
            key, values = decoded.name, {"data": record.frame.data.hex()}  # undecodable: raw
        elif decoded is not None:
            key = decoded.name
            values = {
                name: value for name, value in decoded.signals.items()
                if not _masked(f"{key}.{name}", masked)
            }  # fmt: skip
        else:
            frame = record.frame
            key = (
                f"{frame.arbitration_id:08X}x"
                if frame.is_extended
                else f"{frame.arbitration_id:03X}"
            )
            values = {"data": frame.data.hex()}
        if _masked(key, masked) or (messages is not None and key not in messages):
            continue
        yield Occurrence(record.time_s - first, key, values)


def _masked(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


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
    keep: int = 1000,
) -> Comparison:
    """`tolerances`: "Message.Signal" (glob patterns allowed) -> absolute tolerance.
    `mask`: "Message" or "Message.Signal" patterns to ignore. `messages`: compare only these.
    The reference's time span is compared; `whole=True` also reports candidate frames after
    it. At most `keep` differences are kept (all are counted)."""
    reference, candidate = Path(reference), Path(candidate)
    result = Comparison(reference, candidate)
    window = window_ms / 1e3
    masked = list(mask)
    wanted = set(messages) if messages is not None else None
    tol = dict(tolerances or {})
    pending: dict[str, deque[Occurrence]] = {}  # candidate occurrences not yet paired

    def found(d: Difference) -> None:
        result.total_differences += 1
        if len(result.differences) < keep:
            result.differences.append(d)

    cand = _occurrences(candidate, dbc, masked, wanted)
    cand_next = next(cand, None)
    end = 0.0
    for ref in _occurrences(reference, dbc, masked, wanted):
        end = ref.time_s
        # Read the candidate up to this reference frame's window end.
        while cand_next is not None and cand_next.time_s <= ref.time_s + window:
            pending.setdefault(cand_next.key, deque()).append(cand_next)
            cand_next = next(cand, None)
        queue = pending.get(ref.key)
        while queue and queue[0].time_s < ref.time_s - window:  # too early for any reference
            extra = queue.popleft()
            found(Difference("extra", extra.key, extra.time_s, "not in the reference"))
        if not queue:
            found(Difference("missing", ref.key, ref.time_s,
                             f"no frame within {window_ms} ms in the candidate"))  # fmt: skip
            continue
        match = queue.popleft()
        result.compared += 1
        for detail in _value_differences(ref, match, tol):
            found(Difference("value", ref.key, ref.time_s, detail))
    while cand_next is not None and (whole or cand_next.time_s <= end + window):
        pending.setdefault(cand_next.key, deque()).append(cand_next)
        cand_next = next(cand, None)
    for queue in pending.values():
        for extra in queue:
            if whole or extra.time_s <= end + window:
                found(Difference("extra", extra.key, extra.time_s, "not in the reference"))
    result.differences.sort(key=lambda d: d.time_s)
    return result


def _value_differences(ref: Occurrence, cand: Occurrence, tol: dict[str, float]) -> Iterator[str]:
    for name in sorted(set(ref.values) | set(cand.values)):
        a, b = ref.values.get(name), cand.values.get(name)
        if a == b:
            continue
        if isinstance(a, int | float) and isinstance(b, int | float):
            limit = next((t for p, t in tol.items() if fnmatch.fnmatchcase(f"{ref.key}.{name}", p)),
                         0.0)  # fmt: skip
            if abs(a - b) <= limit:
                continue
            yield f"{name} = {b} in the candidate, {a} in the reference (tolerance {limit})"
        else:
            yield f"{name} = {b!r} in the candidate, {a!r} in the reference"
