"""Bosch M_CAN (CAN FD) controller model: message RAM elements and filters (the controller
registers and behaviour follow in the next step of issue #3)."""
