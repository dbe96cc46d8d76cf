"""Plots of chosen DBC signals over time from a trace, as a PNG or an HTML report.

Signals are named "Message.Signal" (glob patterns allowed, e.g. "LightStatus.*"). Value-table
signals are plotted by their raw value with the names on the axis. The trace streams; only
the chosen signals' points are kept.
"""

from __future__ import annotations

import base64
import fnmatch
import html
import io
from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display, no GUI toolkit
import matplotlib.pyplot as plt

from harness.dbc import Dbc
from harness.errors import HarnessError
from harness.replay.reader import read_trace

Series = dict[str, tuple[list[float], list[float]]]
REPORT_SUFFIXES = (".png", ".html", ".htm")


def check_request(path: str | Path, dbc: Dbc, patterns: Iterable[str]) -> None:
    """Refuse, before a replay runs, a report that could not be written."""
    path = Path(path)
    if path.suffix.lower() not in REPORT_SUFFIXES:
        raise HarnessError(f"{path}: a report is .png or .html, not {path.suffix or 'no suffix'}")
    if not path.parent.is_dir():
        raise HarnessError(f"{path}: the directory {path.parent} does not exist")
    _check_patterns(dbc, patterns)


def _check_patterns(dbc: Dbc, patterns: Iterable[str]) -> None:
    known = [f"{m.name}.{s.name}" for m in dbc.database.messages for s in m.signals]
    for p in patterns:
        if not any(fnmatch.fnmatchcase(k, p) for k in known):
            raise HarnessError(f"--plot {p!r} matches no signal of {dbc.source} "
                               f"(signals are named Message.Signal)")  # fmt: skip


def collect(trace: str | Path, dbc: Dbc, patterns: Iterable[str]) -> Series:
    """(times in s from the first frame, values) of every signal matching `patterns`."""
    patterns = list(patterns)
    _check_patterns(dbc, patterns)
    series: Series = {}
    first: float | None = None
    for record in read_trace(trace):
        first = record.time_s if first is None else first
        decoded = dbc.decode(record.frame, choices=False)
        if decoded is None:
            continue
        for name, value in decoded.signals.items():
            key = f"{decoded.name}.{name}"
            if any(fnmatch.fnmatchcase(key, p) for p in patterns):
                times, values = series.setdefault(key, ([], []))
                times.append(record.time_s - first)
                values.append(float(value))
    return series


def plot_png(series: Series, dbc: Dbc, title: str) -> bytes:
    if not series:
        raise HarnessError("nothing to plot: the chosen signals do not occur in the trace")
    fig, axes = plt.subplots(len(series), 1, sharex=True, squeeze=False,
                             figsize=(10, 1.8 * len(series) + 0.8))  # fmt: skip
    for ax, (key, (times, values)) in zip(axes[:, 0], sorted(series.items()), strict=True):
        ax.step(times, values, where="post", linewidth=1)
        ax.set_ylabel(key.replace(".", "\n"), rotation=0, ha="right", va="center", fontsize=8)
        message, signal = key.split(".", 1)
        choices = dbc.database.get_message_by_name(message).get_signal_by_name(signal).choices
        if choices:
            ax.set_yticks(list(choices), [str(v) for v in choices.values()], fontsize=7)
        ax.grid(True, alpha=0.3)
    axes[-1, 0].set_xlabel("time (s)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def write_report(path: str | Path, trace: str | Path, dbc: Dbc, patterns: Iterable[str],
                 summary: str = "") -> Path:  # fmt: skip
    """A .png of the plots, or an .html page with the plots and the summary."""
    path = Path(path)
    patterns = list(patterns)
    check_request(path, dbc, patterns)
    png = plot_png(collect(trace, dbc, patterns), dbc, str(trace))
    if path.suffix.lower() == ".png":
        path.write_bytes(png)
        return path
    image = base64.b64encode(png).decode()  # .html / .htm, as check_request allows
    path.write_text(
        "<!doctype html><meta charset='utf-8'>"
        f"<title>{html.escape(str(trace))}</title>"
        f"<h1>{html.escape(str(trace))}</h1>"
        f"<pre>{html.escape(summary)}</pre>"
        f"<img alt='signals over time' src='data:image/png;base64,{image}'>\n"
    )  # fmt: skip
    return path
