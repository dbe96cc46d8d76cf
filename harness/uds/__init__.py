"""UDS (ISO 14229) over ISO-TP (ISO 15765-2) with the real client libraries: can-isotp and
udsoncan on a simulated CAN bus, in virtual time (`connection`), a configured client for the
bundled ECU (`client`), and the OEM reprogramming sequence (`flash`)."""

from harness.uds.client import (
    DIDS,
    SECURITY_KEY_SLOT,
    TEST_SECURITY_SECRET,
    DiagIds,
    diag_ids,
    isotp_params,
    security_key,
    uds_client,
)
from harness.uds.connection import VirtualIsoTpConnection

__all__ = [
    "DIDS",
    "SECURITY_KEY_SLOT",
    "TEST_SECURITY_SECRET",
    "DiagIds",
    "VirtualIsoTpConnection",
    "diag_ids",
    "isotp_params",
    "security_key",
    "uds_client",
]
