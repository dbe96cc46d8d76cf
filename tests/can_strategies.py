"""Hypothesis strategies for CAN frames, shared by the frame, message-RAM and model tests."""

from __future__ import annotations

from hypothesis import strategies as st

from harness.frames.can import FD_LENGTHS, CanFrame


@st.composite
def can_frames(draw: st.DrawFn) -> CanFrame:
    """Any frame a controller can send: classic data and remote, CAN FD with every length,
    BRS and ESI, standard and extended IDs."""
    extended = draw(st.booleans())
    ident = draw(st.integers(0, 0x1FFFFFFF if extended else 0x7FF))
    if draw(st.booleans()):
        n = draw(st.sampled_from(FD_LENGTHS))
        return CanFrame(ident, draw(st.binary(min_size=n, max_size=n)), is_extended=extended,
                        is_fd=True, brs=draw(st.booleans()), esi=draw(st.booleans()))  # fmt: skip
    if draw(st.booleans()):
        return CanFrame(ident, is_extended=extended, is_remote=True,
                        remote_length=draw(st.integers(0, 8)))  # fmt: skip
    return CanFrame(ident, draw(st.binary(max_size=8)), is_extended=extended)
