"""Simulated buses: CAN / CAN FD frames, their timing on the wire, and (next) the networks."""
