"""Differential conformance of the harness's emulated core against QEMU (see sweep.py)."""
