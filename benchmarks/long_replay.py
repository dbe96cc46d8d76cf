"""Replay a saturated bus for a long stretch of virtual time and report the peak RSS as it goes.

Too long for the benchmark suite (an hour of virtual time takes ~20 minutes here), so a
script: `python benchmarks/long_replay.py --minutes 60`. The trace is 5 s of back-to-back
frames at 500 kbit/s (bench_replay.saturated_trace), replayed in passes into the
exterior-light controller; every 5 virtual minutes it prints the virtual and wall time and
the peak RSS so far, so memory that grows with the run shows as it grows.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import bench_replay  # beside this script (run as one, its folder is on the path)

from harness.build import build
from harness.dbc import Dbc
from harness.replay import ReplayOptions, replay

PASS_S = 5.0
REPORT_NS = 300 * 10**9


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="virtual minutes to replay")
    args = parser.parse_args()
    passes = max(1, round(args.minutes * 60 / PASS_S))
    firmware = build(["elc"])["elc"]
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "saturated.log"
        bench_replay.VIRTUAL_S = PASS_S
        per_pass = bench_replay.saturated_trace(trace, 500_000)
        options = ReplayOptions(exclude_ids=Dbc.load().sent_by("ELC"), loops=passes)
        start = time.perf_counter()
        reported = -1

        def progress(done_ns: int, _total_ns: int) -> None:
            nonlocal reported
            if done_ns // REPORT_NS != reported:
                reported = done_ns // REPORT_NS
                print(f"{done_ns / 1e9:7.0f} s virtual {time.perf_counter() - start:7.0f} s wall "
                      f"peak RSS {peak_rss_mb():6.1f} MB", flush=True)  # fmt: skip

        result = replay(trace, firmware=firmware, options=options, bitrate=500_000,
                        data_bitrate=2_000_000, tail_ms=0, progress=progress)  # fmt: skip
    wall = time.perf_counter() - start
    print(f"{passes} passes of {per_pass:,} frames: {result.frames_in:,} in, "
          f"{result.frames_out:,} out, {result.virtual_s:.0f} s virtual in {wall:.0f} s wall "
          f"({result.virtual_s / wall:.2f}x real time), peak RSS {peak_rss_mb():.1f} MB")


if __name__ == "__main__":
    main()
