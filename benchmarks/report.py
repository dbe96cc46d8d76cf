"""Print the derived figures (medians) of a pytest-benchmark JSON file: `make bench` runs it."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(path: str) -> None:
    data = json.loads(Path(path).read_text())
    print(f"{'benchmark':34} {'median':>12}  derived")
    for bench in data["benchmarks"]:
        median = bench["stats"]["median"]
        shown = f"{median * 1e3:9.3f} ms" if median >= 1e-3 else f"{median * 1e6:9.2f} us"
        extra = ", ".join(f"{k}={v}" for k, v in bench["extra_info"].items())
        print(f"{bench['name']:34} {shown:>12}  {extra}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build/benchmarks.json")
