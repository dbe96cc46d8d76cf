"""Write the stimulus traces in traces/stimuli/ (what the vehicle sends the light controller).

    python traces/make_stimuli.py
    for t in traces/stimuli/*.asc; do
        harness replay "$t" --firmware build/firmware/elc.elf -o "traces/golden/$(basename "$t")"
    done

The golden traces are those replays: the stimulus plus the firmware's answers. tests/
test_golden_traces.py replays every stimulus again and compares the result with its golden.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import can

from harness.dbc import Dbc
from harness.e2e.config import from_dbc

HERE = Path(__file__).parent / "stimuli"
DBC = Dbc.load()
E2E = from_dbc(DBC)  # VehicleState: profile 1, counter and CRC right on every frame


def write(
    name: str, span_ms: int, frames: Callable[[int], list[tuple[str, dict[str, object]]]]
) -> None:
    """`frames(ms)`: the (message, signals) sent at that millisecond."""
    with can.Logger(str(HERE / name)) as log:
        for ms in range(span_ms):
            for message, signals in frames(ms):
                frame = DBC.encode(message, **signals)
                if message in E2E:
                    counter = int(str(signals.get(f"{message}_Counter", 0)))
                    frame = dataclasses.replace(
                        frame, data=E2E[message].protect(frame.data, counter)
                    )
                msg = frame.to_message()
                msg.timestamp, msg.channel = ms / 1000, 0
                log.on_message_received(msg)


def vehicle(ms: int, **signals: object) -> list[tuple[str, dict[str, object]]]:
    """VehicleState every 10 ms, its alive counter counting 0..14."""
    if ms % 10:
        return []
    return [("VehicleState", {"Speed": 50, "VehicleState_Counter": ms // 10 % 15, **signals})]


def brake(ms: int) -> list[tuple[str, dict[str, object]]]:
    return vehicle(ms, BrakePedal="Pressed" if 300 <= ms < 600 else "Released")


def turn_and_hazard(ms: int) -> list[tuple[str, dict[str, object]]]:
    request = "Left" if ms < 1000 else "Hazard" if ms < 2000 else "Off"
    return vehicle(ms, TurnRequest=request)


def headlights(ms: int) -> list[tuple[str, dict[str, object]]]:
    out = vehicle(ms)
    if ms % 100 == 0:
        mode = ("Off", "Low", "High", "Auto", "Auto")[ms // 400 % 5]
        ambient = 80 if ms < 1600 else 10
        out.append(
            (
                "LightCommand",
                {"HeadlightMode": mode, "FogLight": int(ms >= 1200), "AmbientLevel": ambient},
            )
        )
    return out


if __name__ == "__main__":
    HERE.mkdir(exist_ok=True)
    write("brake.asc", 1000, brake)
    write("turn_and_hazard.asc", 2500, turn_and_hazard)
    write("headlights.asc", 2000, headlights)
