"""Standard and extended IDs are different IDs: 0x600 is not 0x600x, in filters and the CLI."""

from __future__ import annotations

from pathlib import Path

import can
import pytest
from test_cli import harness

from harness.frames.ids import EXTENDED, format_id, parse_id
from harness.replay import ReplayOptions, replay


@pytest.mark.parametrize(
    ("text", "key"),
    [("0x600", 0x600), ("600", 0x600), ("0x600x", 0x600 | EXTENDED), ("0x600X", 0x600 | EXTENDED),
     ("600x", 0x600 | EXTENDED), ("18FF0042", 0x18FF0042 | EXTENDED), ("0x0", 0), ("7ff", 0x7FF)],
)  # fmt: skip
def test_ids_parse_as_standard_or_extended(text: str, key: int) -> None:
    assert parse_id(text) == key
    assert parse_id(format_id(key)) == key


@pytest.mark.parametrize("text", ["0x20000000", "-1", "0xZZ", "x", ""])
def test_bad_ids_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_id(text)


@pytest.fixture
def both_kinds(tmp_path: Path) -> Path:
    """The same number as a standard and as an extended ID, alternating."""
    path = tmp_path / "both.log"
    with can.Logger(str(path)) as log:
        for i in range(10):
            log.on_message_received(can.Message(timestamp=1 + i / 1000, arbitration_id=0x600,
                                                is_extended_id=bool(i % 2), data=bytes([i]),
                                                channel=0))  # fmt: skip
    return path


def test_filters_tell_standard_from_extended(both_kinds: Path) -> None:
    def replayed(**options: object) -> int:
        return replay(both_kinds, options=ReplayOptions(**options), tail_ms=0).frames_in  # type: ignore[arg-type]

    assert replayed(ids=frozenset({0x600})) == 5
    assert replayed(ids=frozenset({0x600 | EXTENDED})) == 5
    assert replayed(exclude_ids=frozenset({0x600})) == 5
    assert replayed(ids=frozenset({0x600, 0x600 | EXTENDED})) == 10


def test_cli_id_syntax(both_kinds: Path) -> None:
    standard = harness("replay", str(both_kinds), "--id", "0x600", "--tail-ms", "0")
    assert standard.returncode == 0, standard.stderr
    assert "5 in (replayed)" in standard.stdout and "5 filtered" in standard.stdout
    extended = harness("replay", str(both_kinds), "--exclude-id", "0x600x", "--tail-ms", "0")
    assert "5 in (replayed)" in extended.stdout
    bad = harness("replay", str(both_kinds), "--id", "0x2000000000")
    assert bad.returncode == 2 and "0x123x (extended)" in bad.stderr


def test_the_summary_names_standard_and_extended_twins_apart(
    both_kinds: Path, tmp_path: Path
) -> None:
    from harness.dbc import Dbc

    path = tmp_path / "twins.dbc"
    path.write_text('VERSION ""\nNS_ :\nBS_:\nBU_: A B\n\n'
                    'BO_ 1536 StdSix: 1 A\n SG_ S : 0|8@1+ (1,0) [0|255] "" B\n\n'
                    'BO_ 2147485184 ExtSix: 1 B\n SG_ E : 0|8@1+ (1,0) [0|255] "" A\n')  # fmt: skip
    summary = replay(both_kinds, dbc=Dbc.load(path), tail_ms=0).summary()
    rows = {line.split()[2]: line.split()[3] for line in summary.splitlines()
            if line.startswith("can0  in")}  # fmt: skip
    assert rows == {"0x600": "StdSix", "0x600x": "ExtSix"}


def test_bus_statistics_and_error_injection_tell_the_two_apart() -> None:
    from harness.network import CanFrame, Network, PythonNode

    net = Network()
    bus = net.can_bus("can0")
    tx, rx = PythonNode("tx", bus), PythonNode("rx", bus)
    bus.inject_errors(1, ids={0x600 | EXTENDED})  # only the extended one is destroyed
    tx.send(CanFrame(0x600, b"\x01"))
    tx.send(CanFrame(0x600, b"\x02", is_extended=True))
    net.run_for(ms=5)
    assert bus.stats.per_id == {0x600: 1, 0x600 | EXTENDED: 1}
    assert bus.stats.errors == 1 and len(rx.received) == 2
