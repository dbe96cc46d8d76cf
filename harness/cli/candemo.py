"""The CAN part of `harness demo`: the exterior-light controller answering stimuli by name."""

from __future__ import annotations

from collections.abc import Callable

from harness.build import build
from harness.dbc import Dbc
from harness.machine import Machine
from harness.network import CanFrame, Network, PythonNode

STIMULI = (  # (virtual ms, message, signals)
    (20, "VehicleState", {"Speed": 50, "BrakePedal": "Pressed"}),
    (45, "VehicleState", {"Speed": 50, "TurnRequest": "Left"}),
    (70, "LightCommand", {"HeadlightMode": "Auto", "AmbientLevel": 10}),
)
SHOWN = ("LightStatus",)  # cyclic messages are shown only when their content changes


def _signals(values: dict[str, object]) -> str:
    return ", ".join(f"{k}={round(v, 3) if isinstance(v, float) else v}" for k, v in values.items()
                     if not k.endswith("_Counter"))  # fmt: skip


def _sender(node: PythonNode, frame: CanFrame) -> Callable[[], None]:
    return lambda: node.send(frame)


def run(ms: float = 100) -> None:
    dbc = Dbc.load()
    net = Network()
    net.can_bus("can0", bitrate=500_000, data_bitrate=2_000_000)
    net.add_ecu("ELC", Machine(build(["elc"])["elc"]))
    tester = PythonNode("tester", net.bus("can0"))
    for at_ms, name, signals in STIMULI:
        net.clock.schedule_at(int(at_ms * 1e6), _sender(tester, dbc.encode(name, **signals)))
    net.run_for(ms=ms)

    print("\nExterior-light controller (firmware_stubs/elc) on can0, 500 kbit/s / 2 Mbit/s FD:")
    print(f"  {'time (ms)':>10}  {'from':6} {'message':22} signals")
    last: dict[str, str] = {}
    frames: list[tuple[CanFrame, str]] = [(f, "tester") for f in tester.sent]
    frames += [(f, "ELC") for f in tester.received]
    for frame, sender in sorted(frames, key=lambda item: item[0].timestamp_ns):
        decoded = dbc.decode(frame)
        name = decoded.name if decoded else f"0x{frame.arbitration_id:X}"
        text = _signals(decoded.signals) if decoded else frame.data.hex()
        if sender == "ELC" and (name not in SHOWN or last.get(name) == text):
            continue
        last[name] = text
        print(f"  {frame.timestamp_ns / 1e6:10.3f}  {sender:6} {name:22} {text}")
    stats = net.bus("can0").stats
    print(
        f"  {stats.frames} frames in {ms:g} ms, bus load {stats.load(net.now_ns):.1%} "
        f"(LightStatus every 10 ms, LightDiag every 100 ms; unchanged ones not shown)"
    )
