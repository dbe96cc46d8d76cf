"""The native M_CAN data path against the Python model (the specification), op for op.

Two controllers, one `Mcan` and one `NativeMcan`, each with its own message RAM and clock,
get the same random configuration (message-RAM regions misplaced, overlapping or oversized
now and then) and the same random traffic: register reads and writes of any size and lane,
TX elements written by "firmware", frames from the bus, arbitration rounds won, lost or
destroyed by error frames, bursts of errors, reconfiguration, snapshot, restore and reset,
time passing. After every step the two must agree on
every register, every byte of message RAM, the TX requests, the error counters, the FIFO
indices, every value read, every frame offered and every interrupt-line and bus-request call.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path
from typing import Any

import pytest
from can_strategies import can_frames
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import Machine
from harness.clock import VirtualClock
from harness.core import native
from harness.frames.can import CanFrame
from harness.network import Network, PythonNode
from harness.peripherals.mcan.message_ram import write_tx_element
from harness.peripherals.mcan.model import Mcan
from harness.peripherals.mcan.native import NativeMcan
from harness.peripherals.mcan.regs import IR, MCAN_BLOCK
from harness.replay import replay

HZ = 120_000_000
RAM = 0x4000
SID, XID, FIFO0, FIFO1, TXB, EVENTS = 0x000, 0x040, 0x080, 0x300, 0x500, 0x800
HOT = ("IR", "IE", "ILS", "ILE", "TXBTIE", "TXBCIE", "RXF0A", "RXF1A", "TXEFA", "TXBAR",
       "TXBCR", "RXF0S", "RXF1S", "TXFQS", "TXBRP", "TXBTO", "TXBCF", "TXEFS", "PSR", "ECR",
       "CCCR", "CCCR", "TEST", "TXBC", "RXF0C", "RXF1C", "RXESC", "TXEFC", "SIDFC",
       "GFC")  # fmt: skip
OFFSETS = {r.name: r.offset for r in MCAN_BLOCK.registers}


class Recorder:
    """An interrupt line or a bus that writes down every call with an effect: as for the
    NVIC's level-sensitive lines, setting a low line low again does nothing, while every
    high level pends the interrupt."""

    def __init__(self, log: list[Any], name: str) -> None:
        self.log, self.name, self.level = log, name, False

    def set(self, level: bool) -> None:
        if level or self.level:
            self.log.append((self.name, level))
        self.level = level

    def __call__(self, at_ns: int) -> None:
        self.log.append((self.name, at_ns))


def controller(kind: type[Mcan]) -> tuple[Mcan, list[Any]]:
    log: list[Any] = []
    clock = VirtualClock(HZ, native.new_context())
    m = kind("MCAN0", 0x4000_6000, clock, (Recorder(log, "line0"), Recorder(log, "line1")),
             memoryview(bytearray(RAM)), 40_000_000)  # fmt: skip
    m.bus_request.append(Recorder(log, "bus"))
    return m, log


def pack(reg: str, **fields: int) -> int:
    return MCAN_BLOCK.register(reg).pack(**fields)


@st.composite
def configurations(draw: st.DrawFn) -> list[tuple[str, int]]:
    """Register writes from INIT to running, and the filter elements."""
    n = st.integers

    def place(usual: int) -> int:
        """Where a region starts: mostly its own place; else anywhere, overlapping others,
        at the end of the message RAM or beyond it."""
        return draw(st.sampled_from([usual] * 6 + [draw(n(0, RAM // 4 - 1)) * 4, RAM - 16,
                                                   RAM + 0x100, SID, FIFO0]))  # fmt: skip

    def depth(usual: int, top: int = 127) -> int:
        """A FIFO or buffer count: mostly small; else beyond what the hardware supports."""
        return draw(st.sampled_from([draw(n(0, usual))] * 5 + [draw(n(30, top))]))

    fd, brs = draw(st.booleans()), draw(st.booleans())
    test_mode = draw(st.sampled_from(["none", "none", "none", "external", "internal", "monitor"]))
    cccr = pack("CCCR", INIT=1, CCE=1, FDOE=int(fd), BRSE=int(brs),
                TEST=int(test_mode != "none"), MON=int(test_mode in ("internal", "monitor")))
    writes = [
        ("CCCR", pack("CCCR", INIT=1, CCE=1)), ("CCCR", cccr),
        ("SIDFC", pack("SIDFC", FLSSA=place(SID) // 4, LSS=draw(n(0, 12)))),
        ("XIDFC", pack("XIDFC", FLESA=place(XID) // 4, LSE=draw(n(0, 6)))),
        ("GFC", draw(n(0, 0x3F))),
        ("XIDAM", draw(st.sampled_from([0x1FFFFFFF, 0x1FFFFF00, draw(n(0, 0x1FFFFFFF))]))),
        ("RXF0C", pack("RXF0C", F0SA=place(FIFO0) // 4, F0S=depth(8), F0WM=draw(n(0, 8)),
                       F0OM=int(draw(st.booleans())))),
        ("RXF1C", pack("RXF1C", F1SA=place(FIFO1) // 4, F1S=depth(6), F1WM=draw(n(0, 6)),
                       F1OM=int(draw(st.booleans())))),
        ("RXESC", pack("RXESC", F0DS=draw(n(0, 7)), F1DS=draw(n(0, 7)))),
        ("TXBC", pack("TXBC", TBSA=place(TXB) // 4, NDTB=depth(4, 63), TFQS=depth(4, 63),
                      TFQM=int(draw(st.booleans())))),
        ("TXESC", pack("TXESC", TBDS=draw(n(0, 7)))),
        ("TXEFC", pack("TXEFC", EFSA=place(EVENTS) // 4, EFS=depth(4, 63), EFWM=draw(n(0, 4)))),
    ]  # fmt: skip
    if test_mode in ("external", "internal"):
        writes.append(("TEST", pack("TEST", LBCK=1)))
    writes += [
        ("IE", draw(n(0, 0xFFFFFFFF)) & MCAN_BLOCK.register("IE").defined_mask),
        ("ILS", draw(n(0, 0xFFFFFFFF)) & MCAN_BLOCK.register("ILS").defined_mask),
        ("ILE", draw(n(0, 3))), ("TXBTIE", draw(n(0, 0xFF))),
        ("CCCR", cccr & ~pack("CCCR", INIT=1, CCE=1)),  # leave INIT: on the bus
    ]  # fmt: skip
    return writes


@st.composite
def filters(draw: st.DrawFn) -> bytes:
    standard = [draw(st.integers(0, 0xFFFFFFFF)) for _ in range(12)]
    extended = [draw(st.integers(0, 0xFFFFFFFF)) for _ in range(12)]
    return struct.pack("<12I", *standard) + struct.pack("<12I", *extended)


LANES = [(0, 4), (0, 1), (1, 1), (2, 2), (0, 2), (3, 1), (2, 4), (3, 2)]  # (offset, size)
operations = st.one_of(
    st.tuples(st.just("write"), st.sampled_from(HOT), st.sampled_from(LANES),
              st.integers(0, 0xFFFFFFFF)),
    st.tuples(st.just("read"), st.sampled_from(sorted(OFFSETS)), st.sampled_from(LANES)),
    st.tuples(st.just("element"), st.integers(0, 7), can_frames(), st.integers(0, 255),
              st.booleans()),
    st.tuples(st.just("receive"), can_frames()),
    st.tuples(st.just("arbitrate"), st.sampled_from(["sent", "sent", "lost", "error"])),
    st.tuples(st.just("error"), st.booleans(), st.sampled_from([1, 1, 1, 13, 40])),
    st.tuples(st.just("time"), st.integers(0, 2_000_000)),
    st.tuples(st.sampled_from(["snapshot", "restore", "reset"])),
)


def state(m: Mcan, log: list[Any]) -> dict[str, Any]:
    return {
        "regs": {name: list(v) for name, v in m.regs.values.items()},
        "ram": bytes(m.ram),
        "pending": dict(m._pending),
        "counters": (m._tec, m._rec, m._fifo_get, m._fifo_used, m._offered, m._looping),
        "log": list(log),
        "recovery": m._recovery.at,
    }


def step(m: Mcan, op: tuple[Any, ...], snapshots: dict[int, Any]) -> Any:
    """One operation; what it returned, or the exception it raised (the model raises on
    elements it cannot fit: the native path must then raise the same)."""
    try:
        return _step(m, op, snapshots)
    except Exception as err:  # compared between the two paths
        return type(err).__name__, str(err)


def _step(m: Mcan, op: tuple[Any, ...], snapshots: dict[int, Any]) -> Any:
    kind = op[0]
    if kind == "snapshot":
        snapshots[id(m)] = m.snapshot()
        return None
    if kind == "restore":
        if id(m) in snapshots:
            m.restore(snapshots[id(m)])
        return None
    if kind == "reset":
        m.reset()
        return None
    if kind == "write":
        _, reg, (lane, size), value = op
        m.write(OFFSETS[reg] + lane, size, value & ((1 << 8 * size) - 1))
        return None
    if kind == "read":
        _, reg, (lane, size) = op
        return m.read(OFFSETS[reg] + lane, size)
    if kind == "element":
        _, index, frame, marker, event = op
        write_tx_element(m.ram, TXB + 72 * index, frame, marker, event)
        return None
    now = m.clock.ns
    if kind == "receive":
        m.receive(op[1].stamped(now, "can0"))
        return None
    if kind == "arbitrate":
        offered = m.offer(now)
        if offered is not None:
            if op[1] == "sent":
                m.transmitted(offered.stamped(now, "can0"))
            elif op[1] == "error":
                m.bus_error(transmitting=True)
        return offered
    if kind == "error":
        for _ in range(op[2]):  # enough of them reach error passive and bus-off
            m.bus_error(transmitting=op[1])
        return None
    m.clock.advance_to(m.clock.cycles + op[1])
    return m.pending_since()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_native_path_equals_the_model(data: st.DataObject) -> None:
    config = data.draw(configurations())
    filter_bytes = data.draw(filters())
    ops = data.draw(st.lists(operations, min_size=1, max_size=60))
    python, python_log = controller(Mcan)
    fast, fast_log = controller(NativeMcan)
    for m in (python, fast):
        m.ram[SID : SID + len(filter_bytes)] = filter_bytes
        for reg, value in config:
            m.write(OFFSETS[reg], 4, value)
    assert state(fast, fast_log) == state(python, python_log)
    snapshots: dict[int, Any] = {}
    for i, op in enumerate(ops):
        expected, got = step(python, op, snapshots), step(fast, op, snapshots)
        assert got == expected, f"step {i} {op}"
        assert state(fast, fast_log) == state(python, python_log), f"after step {i} {op}"
        core = fast._state.core  # what C derives from the model's state
        assert core.recovering == (fast._recovery.at is not None)


def test_snapshot_restores_the_native_state() -> None:
    m, log = controller(NativeMcan)
    for reg, value in [("CCCR", 3), ("RXF0C", pack("RXF0C", F0SA=FIFO0 // 4, F0S=4)),
                       ("GFC", 0), ("TXBC", pack("TXBC", TBSA=TXB // 4, NDTB=2)),
                       ("IE", 1), ("ILE", 1), ("CCCR", 0)]:  # fmt: skip
        m.write(OFFSETS[reg], 4, value)
    snap = m.snapshot()
    before = state(m, log)
    write_tx_element(m.ram, TXB, CanFrame(0x123, b"\x01"))
    m.write(OFFSETS["TXBAR"], 4, 1)
    m.receive(CanFrame(0x10, b"\x02", timestamp_ns=5))
    assert m.regs["RXF0S"] & 0x7F == 1 and m.regs["TXBRP"] == 1
    m.restore(snap)
    after = state(m, log)
    assert after["regs"] == before["regs"] and after["pending"] == before["pending"] == {}
    m.receive(CanFrame(0x10, b"\x02", timestamp_ns=5))
    assert m.regs["RXF0S"] & 0x7F == 1  # the restored controller still runs natively


def test_the_message_loop_runs_in_c() -> None:
    """A configured controller's per-frame work is served natively, none of it declined."""
    m, log = controller(NativeMcan)
    for reg, value in [("CCCR", 3), ("RXF0C", pack("RXF0C", F0SA=FIFO0 // 4, F0S=4)),
                       ("GFC", 0), ("TXBC", pack("TXBC", TBSA=TXB // 4, TFQS=4)),
                       ("TXEFC", pack("TXEFC", EFSA=EVENTS // 4, EFS=4)),
                       ("IE", IR["RF0N"] | IR["TEFN"]), ("ILE", 1), ("CCCR", 0)]:  # fmt: skip
        m.write(OFFSETS[reg], 4, value)
    before = m.native_counts
    for n in range(20):
        m.receive(CanFrame(0x100 + n, bytes([n]), timestamp_ns=1000 * n))  # the bus delivers
        status = m.read(OFFSETS["RXF0S"], 4)  # the ISR: RX FIFO status, acknowledge, clear IR
        m.write(OFFSETS["RXF0A"], 4, status >> 8 & 0x3F)
        put = m.read(OFFSETS["TXFQS"], 4) >> 16 & 0x1F  # answer through the TX FIFO
        write_tx_element(m.ram, TXB + 16 * put, CanFrame(0x200 + n, bytes([n])), n, True)
        m.write(OFFSETS["TXBAR"], 4, 1 << put)
        m.write(OFFSETS["IR"], 4, m.read(OFFSETS["IR"], 4))
        sent = m.offer(m.clock.ns)  # the bus takes the answer
        assert sent == CanFrame(0x200 + n, bytes([n]))
        m.transmitted(sent.stamped(2000 * n, "can0"))
        m.write(OFFSETS["TXEFA"], 4, m.read(OFFSETS["TXEFS"], 4) >> 8 & 0x1F)
    served, declined = (now - then for now, then in zip(m.native_counts, before, strict=True))
    assert (served, declined) == (20 * 10, 0)  # 8 register accesses and 2 bus events per frame
    assert ("line0", True) in log and m.regs["TXEFS"] & 0x3F == 0


def _echo_run(elf: Path, seed: int, batch: bool) -> tuple[tuple[Any, ...], int]:
    """The echo firmware under random traffic with error frames: everything observable, and
    how many accesses and bus events the native data path served."""
    rng = random.Random(seed)
    net = Network()
    bus = net.can_bus("can0", 500_000, 2_000_000)
    ecu = net.add_ecu("echo", Machine(elf))
    tester = PythonNode("tester", bus, tx_order="priority")
    net.run_for(ms=1)
    tester.send(CanFrame(0x7F0, bytes([int(batch)])))
    for _ in range(40):
        for _ in range(rng.choice([1, 3, 8])):
            fd, extended = rng.random() < 0.5, rng.random() < 0.3
            ident = rng.randrange(0x1FFFFFFF if extended else 0x7EF)
            data = rng.randbytes(rng.choice([0, 8, 12, 64] if fd else [0, 3, 8]))
            tester.send(CanFrame(ident, data, extended, fd, brs=fd and rng.random() < 0.7))
        if rng.random() < 0.2:
            bus.inject_errors(rng.choice([1, 2]))
        net.run_for(us=rng.choice([100, 700, 2500]))
    net.run_for(ms=5)
    mcan = ecu.peripheral("MCAN0")
    regs = {name: list(v) for name, v in mcan.regs.values.items()}
    observed = (tester.received, tester.sent, regs, bytes(mcan.ram), ecu.clock.cycles,
                ecu.read_symbol("rx_interrupts"), bus.stats)  # fmt: skip
    return observed, mcan.native_counts[0] if isinstance(mcan, NativeMcan) else 0


@pytest.mark.parametrize("batch", [False, True], ids=["per-frame", "watermark"])
def test_an_ecu_behaves_the_same_on_both_paths(
    firmware: dict[str, Path], monkeypatch: pytest.MonkeyPatch, batch: bool
) -> None:
    """Frames, timestamps, registers, message RAM, interrupts: the whole ECU, both paths."""
    runs = []
    for switch in ("0", "1"):
        monkeypatch.setenv("HARNESS_NATIVE", switch)
        runs.append(_echo_run(firmware["canecho"], seed=7, batch=batch))
    (python, none), (fast, served) = runs
    assert none == 0 and served > 500  # the second run's data path was native
    assert len(python[0]) > 50  # it echoed (frames beyond its FIFO depth are lost)
    for name, a, b in zip(("received", "sent", "regs", "ram", "cycles", "interrupts", "bus"),
                          python, fast, strict=True):  # fmt: skip
        assert a == b, name


def test_a_golden_replay_is_identical_on_both_paths(
    firmware: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    stimulus = sorted((Path(__file__).parent.parent / "traces" / "stimuli").glob("*.asc"))[0]
    outputs = []
    for switch in ("0", "1"):
        monkeypatch.setenv("HARNESS_NATIVE", switch)
        out = tmp_path / f"native{switch}.asc"
        replay(stimulus, firmware=firmware["elc"], output=out)
        outputs.append(out.read_text().splitlines()[1:])  # the header line holds the date
    assert len(outputs[0]) > 50 and outputs[0] == outputs[1]


def test_an_exception_in_a_callback_from_c_is_raised_not_lost() -> None:
    class BrokenLine:
        def set(self, level: bool) -> None:
            if level:
                raise RuntimeError("the interrupt line broke")

    clock = VirtualClock(HZ, native.new_context())
    m = NativeMcan("MCAN0", 0, clock, (BrokenLine(), BrokenLine()), memoryview(bytearray(RAM)),
                   40_000_000)  # fmt: skip
    for reg, value in [("CCCR", 3), ("RXF0C", pack("RXF0C", F0SA=FIFO0 // 4, F0S=4)),
                       ("GFC", 0), ("IE", IR["RF0N"]), ("ILE", 1), ("CCCR", 0)]:  # fmt: skip
        m.write(OFFSETS[reg], 4, value)
    with pytest.raises(RuntimeError, match="line broke"):
        m.receive(CanFrame(0x10, b"\x01"))
    m.write(OFFSETS["IE"], 4, 0)  # the error was raised once, not kept for a later call


def test_a_tx_event_over_the_filters_in_loopback_is_left_to_the_model() -> None:
    """The TX event written before the looped-back frame is filtered may change the filters
    (a review found C then storing outside the message RAM): the model decides, and the
    two paths end alike (here the model raises: the FIFO it now picks lies outside RAM)."""
    results = []
    for kind in (Mcan, NativeMcan):
        m, log = controller(kind)
        for reg, value in [
            ("CCCR", 3), ("CCCR", pack("CCCR", INIT=1, CCE=1, TEST=1, FDOE=1)),
            ("TEST", pack("TEST", LBCK=1)), ("GFC", 0x3C),  # non-matching frames rejected
            ("SIDFC", pack("SIDFC", FLSSA=0x200 // 4, LSS=2)),
            ("RXF0C", pack("RXF0C", F0SA=0x100 // 4, F0S=2)),
            ("RXF1C", pack("RXF1C", F1SA=RAM // 4, F1S=2)),  # outside the message RAM
            ("TXBC", pack("TXBC", TBSA=TXB // 4, NDTB=1)),
            ("TXEFC", pack("TXEFC", EFSA=0x200 // 4, EFS=2)),  # on top of the filters
            ("CCCR", pack("CCCR", TEST=1, FDOE=1)),
        ]:  # fmt: skip
            m.write(OFFSETS[reg], 4, value)
        struct.pack_into("<I", m.ram, 0x200, 0 << 30 | 1 << 27 | 0 << 16 | 0x7FF)  # -> FIFO 0
        # its event word, ESI | ID 0x400: "classic filter, mask 0 -> FIFO 1" once written
        write_tx_element(m.ram, TXB, CanFrame(0x400, b"", is_fd=True, esi=True), 0, True)
        m.write(OFFSETS["TXBAR"], 4, 1)
        offered = m.offer(0)
        assert offered is not None
        results.append((step(m, ("arbitrate", "sent"), {}), state(m, log)))
    assert results[0] == results[1] and results[0][0][0] == "error"  # struct.error
