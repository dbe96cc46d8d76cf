"""Real-world corpora: every sample trace python-can's sdist ships is replayed through the
light controller, every DBC file cantools' sdist ships is loaded, round-tripped message by
message and rest-bussed node by node.

The files come from the sdists of the INSTALLED versions (downloaded once, see
`tests/corpora.py`), one test case per file, named after it. A file either passes or fails
with the error its entry in an expectations table names, with the reason; a new file in a new
release is a new case, and an expected failure that starts passing fails its case, so the
table is kept true.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import can
import cantools
import corpora
import pytest
from cantools.database.can import Message
from cantools.database.namedsignalvalue import NamedSignalValue

from harness.dbc import Dbc, DbcError, Decoded
from harness.e2e.config import from_dbc
from harness.network import CanFrame, Network, PythonNode
from harness.replay import ReplayOptions, TraceError, replay
from harness.restbus import RestBus

# ---- python-can's sample traces ----

TRACES = corpora.files(corpora.sdist("python-can") / "test" / "data", "python-can's test data")

# The files that do not replay, each with the error the harness must give and why that is
# right. Everything else must replay every frame python-can reads, error frames excepted
# (they are bus events, not frames a node sends; `read_trace` skips them).
TRACE_FAILURES: dict[str, tuple[str, str]] = {
    # python-can's own BLF fixtures are synthetic: the CAN_MESSAGE objects carry ID 0x4444444
    # (27 bits) without the extended-ID flag (python-can's test expects is_extended_id=False).
    # No controller can send a 27-bit standard ID: refused, naming the record.
    "test_CanMessage.blf": (
        r"record 1, byte \d+: ID 0x4444444 does not fit a standard \(11-bit\) identifier",
        "a 27-bit ID in a standard frame (synthetic fixture)",
    ),
    "test_CanMessage2.blf": (
        r"record 1, byte \d+: ID 0x4444444 does not fit a standard \(11-bit\) identifier",
        "a 27-bit ID in a standard frame (synthetic fixture, CAN_MESSAGE2 objects)",
    ),
    "test_CanFdMessage.blf": (
        r"record 1, byte \d+: ID 0x4444444 does not fit a standard \(11-bit\) identifier",
        "a 27-bit ID in a standard CAN FD frame (synthetic fixture)",
    ),
    # ID 0x15555555 (29 bits) as a standard ID, and besides an FD remote frame, which CAN FD
    # does not have: the ID is the first thing wrong.
    "test_CanFdMessage64.blf": (
        r"record 1, byte \d+: ID 0x15555555 does not fit a standard \(11-bit\) identifier",
        "a 29-bit ID in a standard frame, and an FD remote frame (synthetic fixture)",
    ),
    # A classic CAN line listing 64 data bytes under DLC 0x40: no classic frame holds them,
    # and python-can reads the first 8 without a word. The harness refuses the line.
    "single_frame.asc": (
        r"line 6: 64 data bytes on a classic CAN line with DLC 40: python-can would read 8",
        "64 bytes on a classic (non-CANFD) line; python-can keeps 8 (synthetic fixture)",
    ),
    # python-can's test package sits beside the traces: not traces, named as such.
    "__init__.py": (r"unknown trace format '\.py'", "python-can's test package, not a trace"),
    "example_data.py": (r"unknown trace format '\.py'", "python-can's test helper, not a trace"),
    "ip_link_list.json": (
        r"unknown trace format '\.json'",
        "canutils interface-list fixture, not a trace",
    ),
}

REPLAY_SPAN_S = 0.2  # longer traces are replayed time-compressed (every frame, closer)


def python_can_frames(path: Path) -> list[can.Message]:
    """What python-can itself reads from the file, without error frames."""
    return [m for m in can.LogReader(str(path)) if not m.is_error_frame]


def frame_key(msg: can.Message) -> tuple[Any, ...]:
    # A remote frame's data is empty, its DLC is what it asks for. CAN FD has no remote
    # frames: python-can keeps the FD flag on remote frames of an FD channel, the harness
    # sends them as the classic remote frames they are (README, vendor files).
    if msg.is_remote_frame:
        return (msg.arbitration_id, msg.is_extended_id, "remote", msg.dlc)
    return (msg.arbitration_id, msg.is_extended_id, bytes(msg.data), msg.is_fd,
            msg.is_fd and msg.bitrate_switch)  # fmt: skip


@pytest.mark.parametrize("trace", TRACES, ids=[p.name for p in TRACES])
def test_python_can_sample_trace_replays(
    trace: Path, firmware: dict[str, Path], tmp_path: Path
) -> None:
    failure = TRACE_FAILURES.get(trace.name)
    out = tmp_path / "out.blf"
    if failure is not None:
        pattern, _why = failure
        with pytest.raises(TraceError, match=re.escape(str(trace)) + ": " + pattern):
            replay(trace, firmware=firmware["elc"], output=out)
        return
    expected = python_can_frames(trace)
    times = [m.timestamp for m in expected]
    span = max(times) - min(times) if times else 0.0
    scale = min(1.0, REPLAY_SPAN_S / span) if span else 1.0
    # the light controller's bit timing (500 kbit/s, 2 Mbit/s), whatever rates the file records
    result = replay(trace, firmware=firmware["elc"], output=out, tail_ms=20,
                    options=ReplayOptions(time_scale=scale), bitrate=500_000,
                    data_bitrate=2_000_000)  # fmt: skip
    assert result.frames_in == len(expected), result.summary()
    assert result.filtered == 0
    assert result.frames_out > 0  # the controller ran: its 10 ms LightStatus at least
    on_bus = [m for m in can.LogReader(str(out)) if m.is_rx]  # the stimulus, as the bus saw it
    assert [frame_key(m) for m in on_bus] == [frame_key(m) for m in expected]


# ---- cantools' sample DBC files ----

DBCS = corpora.files(corpora.sdist("cantools") / "tests" / "files" / "dbc", "cantools' DBC files")

# Files the harness must refuse, with the DbcError it gives and why. cantools refuses each
# of them too (checked): they are broken on purpose, cantools' tests of its own errors.
DBC_FAILURES: dict[str, tuple[str, str]] = {
    "bad_message_length.dbc": (
        r"not a valid DBC: .*The signal Signal1 does not fit in message Message1",
        "a signal at bit 8 of a 1-byte message",
    ),
    "incorrect-sig_valtype.dbc": (
        r"not a valid DBC: .*unused SIG_VALTYPE_ entries in DBC:\s+SIG_VALTYPE_ 345 signal2",
        "a float declaration for a message (345) the file does not have",
    ),
    "incorrect-val.dbc": (
        r"not a valid DBC: .*unused VAL_ entries in DBC:\s+VAL_ 99 signal1",
        "a value table for a message (99) the file does not have",
    ),
    "issue_199.dbc": (
        r"not a valid DBC: .*Standard frame id 0x10630000 is more than 11 bits",
        "a 29-bit ID without the extended bit",
    ),
    "issue_199_extended.dbc": (
        r"not a valid DBC: .*Extended frame id 0x7fffffff is more than 29 bits",
        "an extended ID of 31 bits",
    ),
    "issue_63.dbc": (
        r"not a valid DBC: .*The signals HtrRes and MaxRes are overlapping in message AFT1PSI2",
        "two signals on the same bits",
    ),
}

# Messages of files that load whose frames the harness must refuse to build, and why.
MESSAGE_FAILURES: dict[tuple[str, str], tuple[str, str]] = {
    # 10 bytes, and VFrameFormat (declared there as a plain INT) does not make it CAN FD: no
    # classic frame carries 10 bytes. cantools encodes the 10 bytes regardless.
    ("variable_dlc.dbc", "TestMessage2"): (
        r"variable_dlc\.dbc: TestMessage2 is 10 bytes long, more than a classic CAN frame "
        r"carries \(8\), and the DBC does not make it a CAN FD frame",
        "a classic message longer than 8 bytes",
    ),
}

# Messages whose start values (what `encode(name)` sends when no value is given) the harness
# must refuse to encode, and why.
START_VALUE_FAILURES: dict[tuple[str, str], tuple[str, str]] = {
    # cantools' issue 725: GenSigStartValue 254 for a signal whose range is 0..250. Encoding
    # is strict about ranges; the error says the value is the DBC's start value.
    ("issue_725.dbc", "TestMessage"): (
        r"TestMessage: Signal1=254\.0 is outside 0\.\.250 \(the DBC's start value",
        "a start value outside the signal's range",
    ),
}

MAX_LAYOUTS = 64  # multiplexer pages round-tripped per message, at most


# The files the harness loads (the refused ones are cases of the loading test only).
LOADED = [p for p in DBCS if p.name not in DBC_FAILURES]


@functools.cache
def load(path: Path) -> Dbc:
    return Dbc.load(path)


def cantools_loads(path: Path) -> str | None:
    """None if cantools loads the file as the harness asks it to, else its error."""
    try:
        cantools.database.load_file(str(path), database_format="dbc")
    except Exception as err:  # whatever cantools raises: compared with the harness's answer
        return f"{type(err).__name__}: {err}"
    return None


@pytest.mark.parametrize("path", DBCS, ids=[p.name for p in DBCS])
def test_cantools_sample_dbc_loads(path: Path) -> None:
    refused = cantools_loads(path)
    failure = DBC_FAILURES.get(path.name)
    if failure is not None:
        pattern, _why = failure
        assert refused is not None, "cantools loads it now: take it out of DBC_FAILURES"
        with pytest.raises(DbcError, match=re.escape(str(path)) + ": " + pattern):
            Dbc.load(path)
        return
    assert refused is None, f"cantools refuses {path.name} ({refused}); the harness: {_try(path)}"
    dbc = load(path)
    reference = cantools.database.load_file(str(path), database_format="dbc")
    assert dbc.names == [m.name for m in reference.messages]  # type: ignore[union-attr]


def _try(path: Path) -> str:
    try:
        Dbc.load(path)
    except DbcError as err:
        return f"DbcError: {err}"
    return "loads it"


def allowed_range(signal: Any) -> tuple[float, float]:
    """The signal's range, within what its raw bit field can hold."""
    low = signal.minimum if signal.minimum is not None else -math.inf
    high = signal.maximum if signal.maximum is not None else math.inf
    if not signal.is_float:
        bits = signal.length
        raw = ((-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signal.is_signed
               else (0, (1 << bits) - 1))  # fmt: skip
        ends = sorted(r * signal.scale + signal.offset for r in raw)
        low, high = max(low, ends[0]), min(high, ends[1])
    return low, high


def pick(signal: Any) -> float:
    """A value inside the signal's range: its start value if that is, else 0 clamped."""
    low, high = allowed_range(signal)
    assert low <= high, f"{signal.name}: its range and its raw field do not overlap"
    initial = signal.initial
    if isinstance(initial, NamedSignalValue):
        initial = initial.value * signal.scale + signal.offset
    if initial is not None and low <= initial <= high:
        return float(initial)
    return float(min(max(0.0, low), high))


def layouts(tree: list[Any]) -> list[dict[str, int | None]]:
    """Each way to fill the message: signal -> its multiplexer page (None: not a selector)."""
    result: list[dict[str, int | None]] = [{}]
    for node in tree:
        if isinstance(node, str):
            result = [{**r, node: None} for r in result]
            continue
        ((mux, pages),) = node.items()
        options = [{mux: page, **sub} for page, subtree in sorted(pages.items())
                   for sub in layouts(subtree)]  # fmt: skip
        result = [{**r, **o} for r in result for o in options][:MAX_LAYOUTS]
    return result


def round_trip(dbc: Dbc, message: Message) -> Iterator[str]:
    """Encode and decode each page of the message, its value-table names and its start
    values; yields what came back different."""
    all_layouts = layouts(message.signal_tree)
    for layout in all_layouts:
        values = {name: float(page) if page is not None else pick(message.get_signal_by_name(name))
                  for name, page in layout.items()}  # fmt: skip
        decoded = checked_decode(dbc, message, dbc.encode(message.name, **values), choices=False)
        for name, value in values.items():
            got = decoded.signals[name]
            if not close(message.get_signal_by_name(name), got, value):
                yield f"{message.name}.{name}: {value} came back as {got} ({layout})"
    # Value-table names in, the same names out (the first page; selectors stay numbers). A
    # name whose raw value the signal's field cannot hold (a signed 8-bit signal with 255 in
    # its table, say) must be refused, naming the value and the field.
    first = all_layouts[0]
    names: dict[str, str] = {}
    for name, page in first.items():
        signal = message.get_signal_by_name(name)
        if page is not None or not signal.choices:
            continue
        fitting = [str(label) for raw, label in signal.choices.items() if fits(signal, raw)]
        if fitting:
            names[name] = fitting[0]
        for raw, label in signal.choices.items():
            if not fits(signal, raw):
                with pytest.raises(DbcError, match=rf"{re.escape(name)}='.*' is {raw} in the "
                                   r"value table, which its \d+-bit \w+ field cannot hold"):
                    dbc.encode(message.name, **{**first_values(message, first), name: str(label)})
    if names:
        given = {**first_values(message, first), **names}
        decoded = checked_decode(dbc, message, dbc.encode(message.name, **given), choices=True)
        for name, label in names.items():
            if decoded.signals[name] != label:
                yield f"{message.name}.{name}: {label!r} came back as {decoded.signals[name]!r}"


def first_values(message: Message, layout: dict[str, int | None]) -> dict[str, Any]:
    return {name: float(page) if page is not None else pick(message.get_signal_by_name(name))
            for name, page in layout.items()}  # fmt: skip


def fits(signal: Any, raw: int) -> bool:
    bits = signal.length
    if signal.is_signed:
        return bool(-(1 << (bits - 1)) <= raw < 1 << (bits - 1))
    return bool(0 <= raw < 1 << bits)


def start_values(dbc: Dbc, message: Message) -> Iterator[str]:
    """The frame `encode(name)` makes: every active signal with a start value carries it. A
    multiplexer whose start value selects no page starts on its first page (README)."""
    decoded = checked_decode(dbc, message, dbc.encode(message.name), choices=True)
    numbers = dbc.decode(decoded.frame, choices=False)
    assert numbers is not None
    for signal in message.signals:
        initial, got = signal.initial, decoded.signals.get(signal.name)
        if signal.is_multiplexer:
            pages = sorted({p for s in message.signals if s.multiplexer_signal == signal.name
                            for p in s.multiplexer_ids or ()})  # fmt: skip
            if pages and (initial if initial is not None else 0) not in pages:
                initial = pages[0]
        if initial is None or got is None:
            continue
        if isinstance(initial, NamedSignalValue):
            ok = got == str(initial)
        else:
            ok = close(signal, numbers.signals[signal.name], float(initial))
        if not ok:
            yield f"{message.name}.{signal.name}: start value {initial!r} came out as {got!r}"


def checked_decode(dbc: Dbc, message: Message, frame: CanFrame, choices: bool) -> Decoded:
    assert frame.arbitration_id == message.frame_id
    assert frame.is_extended == bool(message.is_extended_frame)
    assert frame.is_fd == bool(message.is_fd) and len(frame.data) >= message.length
    decoded = dbc.decode(frame, choices=choices)
    assert decoded is not None, f"{message.name}: its own frame decodes as an unknown ID"
    assert decoded.name == message.name and decoded.problem is None, decoded.problem
    return decoded


def close(signal: Any, got: float, value: float) -> bool:
    step = abs(value) * 1e-6 if signal.is_float else abs(signal.scale) / 2
    return abs(got - value) <= step + 1e-9


@pytest.mark.parametrize("path", LOADED, ids=[p.name for p in LOADED])
def test_cantools_sample_dbc_messages_round_trip(path: Path) -> None:
    dbc = load(path)
    wrong: list[str] = []
    for message in dbc.database.messages:
        failure = MESSAGE_FAILURES.get((path.name, message.name))
        if failure is not None:
            with pytest.raises(DbcError, match=failure[0]):
                list(round_trip(dbc, message))
            continue
        wrong.extend(round_trip(dbc, message))
        start = START_VALUE_FAILURES.get((path.name, message.name))
        if start is not None:
            with pytest.raises(DbcError, match=start[0]):
                dbc.encode(message.name)
            continue
        wrong.extend(start_values(dbc, message))
    assert not wrong, "\n".join(wrong)
    for table in (MESSAGE_FAILURES, START_VALUE_FAILURES):
        stale = [m for f, m in table if f == path.name and m not in dbc.names]
        assert not stale, f"an expectations table names messages the file lacks: {stale}"


@pytest.mark.parametrize("path", LOADED, ids=[p.name for p in LOADED])
def test_cantools_sample_dbc_rest_bus_starts_for_every_node(path: Path) -> None:
    dbc = load(path)
    e2e = from_dbc(dbc)
    for node in (n.name for n in dbc.database.nodes):
        # What the rest-bus must send (README): what another node sends and `node` receives,
        # with a cycle time.
        expected = {m.name for m in dbc.database.messages
                    if node not in m.senders and (m.cycle_time or 0) > 0
                    and any(node in s.receivers for s in m.signals)}  # fmt: skip
        net = Network()
        net.can_bus("can0", 500_000, 2_000_000)
        spy = PythonNode("spy", net.bus("can0"))
        restbus = RestBus(net, dbc, node, e2e=e2e)
        assert set(restbus.messages) == expected, node
        cycles = {n: dbc.message(n).cycle_time or 0 for n in expected}
        longest = max(cycles.values(), default=0)
        net.run_for(ms=longest + 1)
        got: dict[str, int] = {}
        for frame in spy.received:
            decoded = dbc.decode(frame)
            assert decoded is not None and decoded.problem is None, frame
            got[decoded.name] = got.get(decoded.name, 0) + 1
        assert set(got) == expected, node
        for name in expected:  # at 0 ms, and every cycle time after
            assert got[name] >= max(1, longest // cycles[name]), name
