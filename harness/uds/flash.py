"""Reprogram an ECU over UDS the way an OEM flashing tool does, with a udsoncan client:

extended session, DTC setting off, communication control (normal messages off), programming
session (the application hands over to the bootloader), security access, erase of the range
the image needs (0x31 FF00 with an address and size),
request download, transfer data in the ECU's maximum block length, transfer exit, check the
image (0x31 FF01, the bootloader's CMAC verification) and its dependencies (FF02), reset.

The image is checked before any byte is sent: a file that is not a signed image, or is
truncated, is a `FlashError` naming what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from udsoncan import MemoryLocation
from udsoncan.client import Client
from udsoncan.Response import Response

from harness import boot, image
from harness.errors import HarnessError

ERASE = 0xFF00
CHECK_IMAGE = 0xFF01
CHECK_DEPENDENCIES = 0xFF02
NORMAL_MESSAGES = 0x01  # 0x28 communicationType: normal communication messages
ENABLE_RX_DISABLE_TX = 0x01  # 0x28 controlType
DTC_SETTING_OFF = 0x02  # 0x85
HARD_RESET = 0x01  # 0x11


class FlashError(HarnessError):
    """The image was refused, or the ECU did not accept the sequence."""


@dataclass(frozen=True, slots=True)
class FlashResult:
    bytes_sent: int
    blocks: int
    block_length: int  # data bytes per TransferData request
    address: int


Progress = Callable[[int, int], None]  # (bytes sent, total)


def checked_image(data: bytes, source: str = "image") -> image.ImageHeader:
    """The image's header, or a FlashError before anything is sent."""
    try:
        header = image.parse(data, source)
    except image.ImageError as err:
        raise FlashError(str(err)) from None
    expected = image.HEADER_SIZE + header.body_size + image.MAC_SIZE
    if len(data) != expected:
        raise FlashError(f"{source}: {len(data)} bytes, the header says {expected} (header, "
                         f"{header.body_size}-byte body, CMAC)")  # fmt: skip
    return header


def flash(client: Client, data: bytes, *, source: str = "image",
          progress: Progress | None = None) -> FlashResult:  # fmt: skip
    """Run the whole sequence with an opened client; the ECU resets into the new image."""
    header = checked_image(data, source)
    address = header.load_address - image.HEADER_SIZE  # the bank's base
    client.change_session(3)  # extended
    client.control_dtc_setting(DTC_SETTING_OFF)
    client.communication_control(ENABLE_RX_DISABLE_TX, NORMAL_MESSAGES)
    client.change_session(2)  # programming: the bootloader answers
    client.unlock_security_access(1)
    # erase what the image needs (the option record: address and size, 4 bytes each)
    _routine(client, ERASE, "erase", b"\x44" + address.to_bytes(4, "big") +
             len(data).to_bytes(4, "big"))  # fmt: skip
    memory = MemoryLocation(address, len(data), address_format=32, memorysize_format=32)
    try:
        response = _answered(client.request_download(memory))
    except Exception as err:
        raise FlashError(f"the ECU refused the download to 0x{address:08X} ({len(data)} bytes): "
                         f"{err}; is the image built for the bank the ECU updates?") from err
    answer: Any = response.service_data  # udsoncan's per-service data
    block = int(answer.max_length) - 2
    sent = blocks = 0
    for offset in range(0, len(data), block):
        chunk = data[offset : offset + block]
        client.transfer_data((blocks + 1) & 0xFF, chunk)
        blocks += 1
        sent += len(chunk)
        if progress:
            progress(sent, len(data))
    client.request_transfer_exit()
    status = _routine(client, CHECK_IMAGE, "check the image")
    if status[0] != 0:
        verdict = boot.verdict_name(status[1]) if len(status) > 1 else "no verdict given"
        raise FlashError(f"the ECU's check of the downloaded image failed: {verdict}")
    if _routine(client, CHECK_DEPENDENCIES, "check dependencies")[0] != 0:
        raise FlashError("the image is valid but not newer than the ECU's confirmed image: "
                         "the bootloader would not try it")  # fmt: skip
    client.ecu_reset(HARD_RESET)
    return FlashResult(sent, blocks, block, address)


def _routine(client: Client, routine: int, what: str, option: bytes | None = None) -> bytes:
    response = _answered(client.start_routine(routine, data=option))
    answer: Any = response.service_data
    record = answer.routine_status_record
    if not record:
        raise FlashError(f"{what} (routine 0x{routine:04X}): no status in the response")
    return bytes(record)



def _answered(response: Response | None) -> Response:
    if response is None:  # only with suppress-positive-response, which this does not use
        raise FlashError("the ECU's response was suppressed")
    return response
