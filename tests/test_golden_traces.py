"""Golden-trace regression: every stimulus in traces/stimuli/ replayed into the light
controller must give its golden trace in traces/golden/ again (by DBC signals, in 1 ms
windows). One test per trace, so `pytest -n auto` spreads a directory of traces over cores."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.dbc import Dbc
from harness.replay import replay
from harness.replay.compare import compare_traces

TRACES = Path(__file__).parent.parent / "traces"
STIMULI = sorted((TRACES / "stimuli").glob("*.asc"))


def test_every_stimulus_has_a_golden_trace() -> None:
    assert STIMULI, "no stimulus traces"
    missing = [s.name for s in STIMULI if not (TRACES / "golden" / s.name).is_file()]
    assert not missing, f"no golden trace for {missing}"


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
