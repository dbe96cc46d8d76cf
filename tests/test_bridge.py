"""An emulated ECU bridged to a real python-can bus, paced to wall-clock time."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import can
from test_cli import harness

from harness import Machine
from harness.dbc import Dbc
from harness.e2e import E2ESender
from harness.e2e.config import from_dbc
from harness.network import CanFrame, Network
from harness.network.bridge import RealBusBridge, run_paced


def protected(dbc: Dbc, **signals: object) -> CanFrame:
    """A VehicleState with a right E2E counter and CRC (what a real VCU sends)."""
    frame = dbc.encode("VehicleState", **signals)
    return dataclasses.replace(
        frame, data=E2ESender(from_dbc(dbc)).protect("VehicleState", frame.data)
    )


def test_ecu_answers_a_python_can_tool_over_a_virtual_bus(firmware: dict[str, Path]) -> None:
    dbc = Dbc.load()
    channel = f"bridge-{time.perf_counter_ns()}"
    with (
        can.Bus(interface="virtual", channel=channel) as tool,
        can.Bus(interface="virtual", channel=channel) as edge,
    ):
        net = Network()
        net.can_bus("can0", 500_000, 2_000_000)
        net.add_ecu("ELC", Machine(firmware["elc"]))
        bridge = RealBusBridge(net, "can0", edge)
        tool.send(protected(dbc, BrakePedal="Pressed").to_message())
        wall = time.monotonic()
        run_paced(net, [bridge], duration_s=0.12)
        wall = time.monotonic() - wall
        seen = []
        while (msg := tool.recv(timeout=0)) is not None:
            seen.append(msg)
    assert wall >= 0.11  # paced: 120 ms of virtual time took at least that long
    assert bridge.injected == 1 and bridge.forwarded == len(seen)
    decoded = [dbc.decode(CanFrame.from_message(m)) for m in seen]
    status = [d for d in decoded if d is not None and d.name == "LightStatus"]
    assert len(status) >= 10  # every 10 ms
    assert status[-1].signals["BrakeLamp"] == 1


def test_cli_bridge_runs_paced_and_reports(firmware: dict[str, Path]) -> None:
    result = harness("run", "--firmware", str(firmware["elc"]), "--can0", "virtual:cli-bridge",
                     "--ms", "150")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "bridge:can0:" in result.stdout and "frames to the real bus" in result.stdout
    assert "ran 150 ms of virtual time" in result.stdout


def test_cli_rejects_a_malformed_bus_spec(firmware: dict[str, Path]) -> None:
    result = harness("run", "--firmware", str(firmware["elc"]), "--can0", "vcan0", "--ms", "10")
    assert result.returncode == 2
    assert "--canN wants INTERFACE:CHANNEL" in result.stderr


def test_cli_bridge_over_udp_multicast_serves_a_tool_in_another_process(
    firmware: dict[str, Path],
) -> None:
    """A real python-can transport between two processes (no vcan on CI machines): the ECU
    runs in `harness run`, the tool here sends VehicleState and reads LightStatus back."""
    import os
    import subprocess
    import sys

    dbc = Dbc.load()
    group = f"239.74.{os.getpid() % 250}.{time.perf_counter_ns() % 250 + 1}"  # xdist-safe
    with can.Bus(interface="udp_multicast", channel=group) as tool:
        ecu = subprocess.Popen(
            [sys.executable, "-m", "harness.cli.main", "run", "--firmware",
             str(firmware["elc"]), "--can0", f"udp_multicast:{group}", "--ms", "4000"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            status = []
            deadline = time.monotonic() + 30
            sent = False
            while time.monotonic() < deadline and not any(s["BrakeLamp"] == 1 for s in status):
                msg = tool.recv(timeout=0.5)
                if msg is None:
                    continue
                decoded = dbc.decode(CanFrame.from_message(msg))
                if decoded is not None and decoded.name == "LightStatus":
                    status.append(decoded.signals)
                    if not sent:  # the ECU is up: press the brake pedal
                        tool.send(protected(dbc, BrakePedal="Pressed").to_message())
                        sent = True
        finally:
            ecu.terminate()
            _out, err = ecu.communicate(timeout=30)
    assert status and status[0]["BrakeLamp"] == 0, err
    assert status[-1]["BrakeLamp"] == 1, f"no BrakeLamp=1 in {len(status)} LightStatus frames"
