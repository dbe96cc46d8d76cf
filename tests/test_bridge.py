"""An emulated ECU bridged to a real python-can bus, paced to wall-clock time."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import can
import pytest
from test_cli import harness

from harness import Machine
from harness.dbc import Dbc
from harness.e2e import E2ESender
from harness.e2e.config import from_dbc
from harness.network import CanFrame, Network
from harness.network.bridge import RealBusBridge, run_paced
from harness.network.can import PythonNode


@dataclasses.dataclass(frozen=True)
class Udp:
    """A udp_multicast bus of its own: on Linux a socket bound to a port hears every group
    on that port, so tests running at once (xdist) each take their own port."""

    group: str
    port: int

    @classmethod
    def fresh(cls) -> Udp:
        unique = os.getpid() * 1_000 + time.perf_counter_ns() // 1_000
        return cls(f"239.75.{unique % 250}.{unique // 250 % 250 + 1}", 20_000 + unique % 30_000)

    def bus(self, thread_safe: bool = False) -> can.BusABC:
        kind = can.ThreadSafeBus if thread_safe else can.Bus
        return kind(interface="udp_multicast", channel=self.group, port=self.port)

    def env(self) -> dict[str, str]:
        """For other processes (`harness run`, python-can's tools): python-can's config."""
        return {**os.environ, "CAN_CONFIG": json.dumps({"port": self.port})}


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
    dbc = Dbc.load()
    udp = Udp.fresh()
    with udp.bus() as tool:
        ecu = subprocess.Popen(
            [sys.executable, "-m", "harness.cli.main", "run", "--firmware",
             str(firmware["elc"]), "--can0", f"udp_multicast:{udp.group}", "--ms", "4000"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=udp.env(),
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


@pytest.mark.parametrize("thread_safe", [False, True], ids=["Bus", "ThreadSafeBus"])
def test_frames_the_bridge_sent_never_come_back_in(
    firmware: dict[str, Path], thread_safe: bool
) -> None:
    """udp_multicast hands a bus its own frames back: without the echo filter one frame into
    the echo firmware (which answers with ID + 1) becomes an endless storm."""
    udp = Udp.fresh()
    with udp.bus() as tool, udp.bus(thread_safe) as edge:
        net = Network()
        net.can_bus("can0", 500_000, 2_000_000)
        net.add_ecu("ECHO", Machine(firmware["canecho"]))
        bridge = RealBusBridge(net, "can0", edge)
        run_paced(net, [bridge], duration_s=0.02)  # bus-on
        tool.send(can.Message(arbitration_id=0x100, data=b"\x01\x02", is_extended_id=False))
        run_paced(net, [bridge], duration_s=0.3)
        seen = []
        while (msg := tool.recv(timeout=0.05)) is not None:
            seen.append(msg)
    # the tool hears its own frame too (udp_multicast), then exactly one answer: no storm
    assert [hex(m.arbitration_id) for m in seen] == ["0x100", "0x101"]
    assert (bridge.injected, bridge.forwarded, bridge.echoes) == (1, 1, 1)


def test_an_identical_frame_from_a_real_node_is_not_taken_for_an_echo() -> None:
    """Only the echo of each forwarded frame is dropped, once; the same frame sent again by a
    real node afterwards gets in."""
    udp = Udp.fresh()
    with udp.bus() as tool, udp.bus() as edge:
        net = Network()
        net.can_bus("can0", 500_000, 2_000_000)
        bridge = RealBusBridge(net, "can0", edge)
        sender = PythonNode("VCU", net.bus("can0"))
        frame = CanFrame(0x123, b"\xaa")
        sender.send(frame)
        run_paced(net, [bridge], duration_s=0.05)
        tool.send(frame.to_message())
        run_paced(net, [bridge], duration_s=0.05)
    assert (bridge.forwarded, bridge.echoes, bridge.injected) == (1, 1, 1)


def test_python_can_logger_and_player_see_one_answer_per_frame(
    firmware: dict[str, Path], tmp_path: Path
) -> None:
    """Three processes on one udp_multicast group: `harness run` with the echo firmware,
    python-can's own `can.logger` recording and `can.player` sending one recorded frame."""
    udp = Udp.fresh()
    stimulus = tmp_path / "stimulus.asc"
    with can.ASCWriter(stimulus) as writer:
        writer.on_message_received(
            can.Message(timestamp=0.0, arbitration_id=0x200, data=b"\x11\x22\x33", channel=0)
        )
    logged = tmp_path / "logged.asc"
    bus = ["-i", "udp_multicast", "-c", udp.group]
    logger = subprocess.Popen([sys.executable, "-m", "can.logger", *bus, "-f", str(logged)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=udp.env())  # fmt: skip
    ecu = subprocess.Popen(
        [sys.executable, "-m", "harness.cli.main", "run", "--firmware", str(firmware["canecho"]),
         "--can0", f"udp_multicast:{udp.group}", "--ms", "2500"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=udp.env(),
    )  # fmt: skip
    try:
        assert ecu.stdout is not None
        assert "running paced" in ecu.stdout.readline()
        time.sleep(0.3)  # wall time for the firmware to reach bus-on (paced)
        player = subprocess.run([sys.executable, "-m", "can.player", *bus, str(stimulus)],
                                capture_output=True, text=True, timeout=60,
                                env=udp.env())  # fmt: skip
        assert player.returncode == 0, player.stderr
        out, err = ecu.communicate(timeout=60)
    finally:
        ecu.kill()
        logger.send_signal(signal.SIGINT)
        logger.communicate(timeout=30)
    assert ecu.returncode == 0, err
    ids = [m.arbitration_id for m in can.LogReader(logged)]
    assert ids == [0x200, 0x201], f"expected the frame and one answer, logged {ids}"
    assert "1 frames to the real bus, 1 from it (1 of its own echoes dropped)" in out
