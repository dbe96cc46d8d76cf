"""`harness` command line. Errors print as `error: …`; `--debug` shows the traceback."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from harness.cli import bench, build, compare, demo, diag, flash, image, regs, replay, run
from harness.errors import HarnessError

SUBCOMMANDS = (build, regs, run, replay, compare, bench, image, flash, diag, demo)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="harness", description="Run Cortex-M ECU firmware on an emulated automotive MCU."
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    sub = p.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS:
        module.add_subparser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")  # fmt: skip
    try:
        return int(args.func(args))
    except BrokenPipeError:  # `harness replay ... | head`: the reader has gone, say nothing
        sys.stderr.close()
        return 141
    except (HarnessError, OSError, KeyError, ValueError) as err:
        if args.debug:
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
