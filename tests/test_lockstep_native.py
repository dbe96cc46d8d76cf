"""The network's lockstep in C (network/bus.c: net_step, net_advance) against the Python one
(Network.step / advance_to in network.py, the reference), on the same native machines.

Three echo ECUs on two buses take random bursts from testers at random moments, one of them
loses its power and gets it back, another is reset by its pin, a Python event on the network
clock sends a frame of its own, and the tests drive the network both ways the API offers
(run_until, step by step; run_for). Every frame with its timestamp, and every machine's cycle,
idle count, registers and SRAM, must come out the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from irqtest import start

from harness import Machine
from harness.errors import FirmwareFault, VirtualTimeout
from harness.network import CanFrame, Network, PythonNode

ANSWERS = (2, 1)  # echo ECUs on can0 and on can1


@pytest.fixture(autouse=True, scope="module")
def native_paths() -> Iterator[None]:
    """Both lockstep paths run native machines, whatever HARNESS_NATIVE says for the suite."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_NATIVE", "1")
        yield
REGS = ("r0", "r1", "r2", "r3", "r12", "sp", "lr", "pc", "xpsr", "primask", "basepri")

bursts = st.lists(st.tuples(st.integers(0, 1), st.integers(1, 8), st.integers(0, 3_000),
                            st.booleans()), min_size=1, max_size=8)  # fmt: skip


def run(elf: Path, native_lockstep: bool, plan: list[Any], cut_at: int, reset_at: int,
        tick_at: int) -> Any:  # fmt: skip
    net = Network()
    for b in ("can0", "can1"):
        net.can_bus(b, bitrate=500_000, data_bitrate=2_000_000)
    ecus = [net.add_ecu(f"echo{e}", Machine(elf), can0=f"can{e % 2}") for e in range(3)]
    assert net._native is not None and net._native.lockstep  # all native here
    net._native.lockstep = native_lockstep
    testers = [PythonNode(f"tester{b}", net.bus(f"can{b}")) for b in range(2)]
    log: list[Any] = []
    for t in testers:
        t.listeners.append(lambda f, name=t.name: log.append((name, f)))
    net.clock.schedule_at(tick_at * 1_000, lambda: testers[1].send(CanFrame(0x55, b"\x55")))
    net.run_for(ms=1)
    for bus, count, gap_us, wait in plan:
        for i in range(count):
            testers[bus].send(CanFrame(0x200 + 2 * i, bytes([i, count])))
        if wait:
            expected = len(testers[bus].received) + count * ANSWERS[bus]
            try:
                net.run_until(lambda b=bus, e=expected: len(testers[b].received) >= e,
                              timeout_ms=5)  # fmt: skip
            except VirtualTimeout:  # an ECU was off or booting: the same on both paths
                log.append(("timeout", net.now_ns))
        net.run_for(us=gap_us)
        now_us = net.now_ns // 1_000
        if cut_at and now_us >= cut_at:
            ecus[1].power_off()
            net.run_for(us=300)
            ecus[1].power_on()
            cut_at = 0
        if reset_at and now_us >= reset_at:
            ecus[2].reset_pin()
            reset_at = 0
    net.run_for(ms=3)
    machines = [(m.cycles, m.idle_cycles, m.sleeping, [m.cpu.reg(r) for r in REGS],
                 [bytes(mem.data) for mem in m.cpu.memories("ram")]) for m in ecus]  # fmt: skip
    return log, machines, [t.sent for t in testers], net.now_ns


@settings(max_examples=20, deadline=None)
@given(bursts, st.integers(0, 4_000), st.integers(0, 4_000), st.integers(0, 4_000))
def test_the_native_lockstep_runs_a_network_as_the_python_one(
    firmware: dict[str, Path], plan: list[Any], cut_at: int, reset_at: int, tick_at: int
) -> None:
    python = run(firmware["canecho"], False, plan, cut_at, reset_at, tick_at)
    native = run(firmware["canecho"], True, plan, cut_at, reset_at, tick_at)
    assert len(python[0]) > 0
    assert native == python


def test_a_firmware_fault_under_the_native_lockstep_is_raised_as_under_the_python_one(
    firmware: dict[str, Path],
) -> None:
    outcomes = []
    for native_lockstep in (False, True):
        net = Network()
        net.can_bus("can0")
        net.add_ecu("faulty", start(firmware["irqtest"], "FAULT_UNMAPPED_READ"), can0=None)
        assert net._native is not None
        net._native.lockstep = native_lockstep
        try:
            net.run_for(ms=5)
        except FirmwareFault as fault:
            outcomes.append((str(fault), net.now_ns, net.ecus["faulty"].cycles))
    assert len(outcomes) == 2 and outcomes[0] == outcomes[1]
    assert outcomes[0][1] < 5_000_000  # the network stopped with the fault, not at the end
