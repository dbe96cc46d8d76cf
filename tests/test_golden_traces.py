"""Golden-trace regression: every stimulus in traces/stimuli/ replayed into the light
controller must give its golden trace in traces/golden/ again (by DBC signals, in 1 ms
windows). One test per trace, so `pytest -n auto` spreads a directory of traces over cores."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.dbc import Dbc
from harness.e2e import CheckStatus, E2EReceiver
from harness.e2e.config import from_dbc
from harness.replay import read_trace, replay
from harness.replay.compare import compare_traces

TRACES = Path(__file__).parent.parent / "traces"
STIMULI = sorted((TRACES / "stimuli").glob("*.asc"))


def test_every_stimulus_has_a_golden_trace_and_valid_e2e() -> None:
    assert STIMULI, "no stimulus traces"
    missing = [s.name for s in STIMULI if not (TRACES / "golden" / s.name).is_file()]
    assert not missing, f"no golden trace for {missing}"
    profile = from_dbc(Dbc.load())["VehicleState"]
    for stimulus in STIMULI:
        rx = E2EReceiver(profile)
        statuses = {rx.check(r.frame.data) for r in read_trace(stimulus)
                    if r.frame.arbitration_id == 0x100}  # fmt: skip
        assert statuses == {CheckStatus.OK}, stimulus.name


@pytest.mark.parametrize("stimulus", STIMULI, ids=[s.stem for s in STIMULI])
def test_replay_matches_the_golden_trace(
    stimulus: Path, firmware: dict[str, Path], tmp_path: Path
) -> None:
    dbc = Dbc.load()
    out = tmp_path / stimulus.name
    result = replay(stimulus, firmware=firmware["elc"], output=out, dbc=dbc)
    assert result.frames_out > 0
    comparison = compare_traces(TRACES / "golden" / stimulus.name, out, dbc=dbc, window_ms=1)
    assert comparison.equal, comparison.report()
