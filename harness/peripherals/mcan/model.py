"""Bosch M_CAN CAN FD controller: the part a driver's message loop uses.

Modelled: CCCR.INIT/CCE (configuration protection: DBTP, NBTP, filters, FIFO and buffer
set-up only writable with INIT = CCE = 1; CCE clears with INIT), FDOE/BRSE, bit timing
(NBTP/DBTP give the bit rates on the bus), standard and extended ID filters (range, dual,
classic mask; FIFO 0/1 or reject; XIDAM), the global filter for non-matching and remote
frames, RX FIFO 0 and 1 in message RAM (fill level, get/put index, watermark, full,
acknowledge, blocking and overwrite mode, message lost), dedicated TX buffers (TXBAR,
TXBRP, TXBTO, TXBCR/TXBCF, lowest ID first), IR/IE/ILS/ILE onto two interrupt lines.
Message RAM is plain memory shared with the firmware; only these registers are MMIO.

Not modelled yet (declared, logged when touched): the TX FIFO/queue and TX event FIFO,
dedicated RX buffers, high-priority messages, loopback/monitoring modes, timestamp and
timeout counters, error counters and fault confinement (PSR/ECR stay error-active).
RX timestamps (RXTS) are virtual microseconds modulo 2**16.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import ClassVar

from harness.clock import VirtualClock
from harness.network.frames import CanFrame
from harness.peripherals.base import IrqLine, Peripheral
from harness.peripherals.mcan import message_ram as mram
from harness.peripherals.mcan.regs import IR, MCAN_BLOCK, PROTECTED

log = logging.getLogger(__name__)


class Mcan(Peripheral):
    block = MCAN_BLOCK
    extra_state: ClassVar[tuple[str, ...]] = ("_offered", "_requested_at")

    def __init__(
        self,
        name: str,
        base: int,
        clock: VirtualClock,
        lines: tuple[IrqLine, IrqLine],
        message_ram: memoryview,
        can_clock_hz: int,
    ) -> None:
        super().__init__(name, base, clock)
        self.lines = lines
        self.ram = message_ram
        self.can_clock_hz = can_clock_hz
        # Set by whoever attaches the controller to a bus: called when a frame is waiting.
        self.bus_request: list[Callable[[int], None]] = []
        self._offered: int | None = None
        self._requested_at = [0] * 32  # ns of virtual time at each buffer's TXBAR
        r = self.regs
        r.on_write["CCCR"] = self._write_cccr
        r.on_write["TXBAR"] = self._write_txbar
        r.on_write["TXBCR"] = self._write_txbcr
        r.on_write["RXF0A"] = lambda _i, w, _n: self._acknowledge(0, w & 0x3F)
        r.on_write["RXF1A"] = lambda _i, w, _n: self._acknowledge(1, w & 0x3F)
        for reg in ("IR", "IE", "ILS", "ILE", "TXBTIE"):
            r.on_write[reg] = lambda _i, _w, _n: self.update_interrupts()

    # ---- register side ----

    def write(self, offset: int, size: int, value: int) -> None:
        reg = self.regs.register_at(offset)
        if reg is not None and reg.name in PROTECTED and not self._configurable():
            log.warning("%s: write to %s ignored: set CCCR.INIT and CCCR.CCE first",
                        self.name, reg.name)  # fmt: skip
            return
        super().write(offset, size, value)

    def _configurable(self) -> bool:
        return self.regs["CCCR"] & 0b11 == 0b11

    @property
    def initialising(self) -> bool:
        return bool(self.regs["CCCR"] & 1)

    def _write_cccr(self, _i: int, _written: int, new: int) -> None:
        if not new & 1:
            self.regs["CCCR"] = new & ~0b10  # CCE clears with INIT
            self._wake_bus()

    def nominal_bitrate(self) -> int:
        r = self.regs
        tq = r.get_field("NBTP", "NTSEG1") + r.get_field("NBTP", "NTSEG2") + 3
        return self.can_clock_hz // ((r.get_field("NBTP", "NBRP") + 1) * tq)

    def data_bitrate(self) -> int:
        r = self.regs
        tq = r.get_field("DBTP", "DTSEG1") + r.get_field("DBTP", "DTSEG2") + 3
        return self.can_clock_hz // ((r.get_field("DBTP", "DBRP") + 1) * tq)

    def update_interrupts(self) -> None:
        r = self.regs
        active = r["IR"] & r["IE"]
        select, enable = r["ILS"], r["ILE"]
        self.lines[0].set(bool(active & ~select) and bool(enable & 1))
        self.lines[1].set(bool(active & select) and bool(enable & 2))

    def _raise(self, *names: str) -> None:
        for n in names:
            self.regs["IR"] |= IR[n]

    # ---- transmit ----

    def _buffers(self) -> int:
        return min(self.regs.get_field("TXBC", "NDTB"), 32)

    def _tx_offset(self, index: int) -> int:
        size = mram.data_field_size(self.regs.get_field("TXESC", "TBDS"))
        return (self.regs["TXBC"] & 0xFFFC) + index * mram.element_words(size) * 4

    def _write_txbar(self, _i: int, written: int, _new: int) -> None:
        valid = (1 << self._buffers()) - 1
        requested = written & valid
        self.regs["TXBAR"] = 0  # the add request is taken at once
        if requested & ~valid:
            log.warning("%s: TXBAR bits beyond the %d configured buffers ignored", self.name,
                        self._buffers())  # fmt: skip
        if not requested:
            return
        r = self.regs
        now = self.clock.ns
        for index in range(self._buffers()):
            if requested >> index & 1:
                self._requested_at[index] = now
        r["TXBRP"] |= requested
        r["TXBTO"] &= ~requested
        r["TXBCF"] &= ~requested
        self._wake_bus()

    def _write_txbcr(self, _i: int, written: int, _new: int) -> None:
        r = self.regs
        r["TXBCR"] = 0
        cancelled = written & r["TXBRP"]
        if self._offered is not None:
            cancelled &= ~(1 << self._offered)  # the frame on the bus completes normally
        r["TXBRP"] &= ~cancelled
        r["TXBCF"] |= cancelled
        if cancelled & r["TXBCIE"]:
            self._raise("TCF")
            self.update_interrupts()

    def _wake_bus(self) -> None:
        if not self.initialising and self.regs["TXBRP"]:
            for request in self.bus_request:
                request(self.clock.ns)

    def pending_since(self) -> int | None:
        pending = self.regs["TXBRP"]
        times = [self._requested_at[i] for i in range(self._buffers()) if pending >> i & 1]
        return min(times, default=None)

    def offer(self, now_ns: int) -> CanFrame | None:
        """The pending TX buffer with the lowest ID (then the lowest index) goes first."""
        self._offered = None
        if self.initialising:
            return None
        pending = self.regs["TXBRP"]
        best: tuple[tuple[int, ...], int, CanFrame] | None = None
        for index in range(self._buffers()):
            if pending >> index & 1 and self._requested_at[index] <= now_ns:
                frame = self._tx_frame(index)
                key = (frame.arbitration_key(), index)
                if best is None or key < best[:2]:
                    best = (key[0], index, frame)
        if best is None:
            return None
        self._offered = best[1]
        return best[2]

    def _tx_frame(self, index: int) -> CanFrame:
        frame, _marker, _event = mram.read_tx_element(self.ram, self._tx_offset(index))
        cccr = self.regs["CCCR"]
        if frame.is_fd and not cccr >> 8 & 1:  # FDOE clear: sent as a classic frame
            return CanFrame(frame.arbitration_id, frame.data[:8], is_extended=frame.is_extended)
        if frame.brs and not cccr >> 9 & 1:  # BRSE clear: no bit-rate switch
            return CanFrame(frame.arbitration_id, frame.data, is_extended=frame.is_extended,
                            is_fd=True, esi=frame.esi)  # fmt: skip
        return frame

    def transmitted(self, frame: CanFrame) -> None:
        index = self._offered
        self._offered = None
        if index is None:
            return
        bit = 1 << index
        r = self.regs
        r["TXBRP"] &= ~bit
        r["TXBTO"] |= bit
        if r["TXBTIE"] & bit:
            self._raise("TC")
        self.update_interrupts()

    # ---- receive ----

    def receive(self, frame: CanFrame) -> None:
        if self.initialising or (frame.is_fd and not self.regs["CCCR"] >> 8 & 1):
            return
        destination = self._filter(frame)
        if destination is None:
            return
        fifo, filter_index = destination
        self._store(fifo, frame, filter_index)
        self.update_interrupts()

    def _filter(self, frame: CanFrame) -> tuple[int, int | None] | None:
        r = self.regs
        gfc = r["GFC"]
        if frame.is_remote and gfc >> (0 if frame.is_extended else 1) & 1:
            return None  # RRFE / RRFS: reject remote frames
        if frame.is_extended:
            count, start = r.get_field("XIDFC", "LSE"), r["XIDFC"] & 0xFFFC
            filters = [mram.read_extended_filter(self.ram, start + 8 * i) for i in range(count)]
            ident = frame.arbitration_id & r["XIDAM"]
            non_matching = (gfc >> 2) & 3
        else:
            count, start = r.get_field("SIDFC", "LSS"), r["SIDFC"] & 0xFFFC
            filters = [mram.read_standard_filter(self.ram, start + 4 * i) for i in range(count)]
            ident = frame.arbitration_id
            non_matching = (gfc >> 4) & 3
        match = mram.first_match(filters, ident)
        if match is None:
            return (non_matching, None) if non_matching < 2 else None
        index, f = match
        action = f.action
        if action in (mram.FilterAction.FIFO0, mram.FilterAction.PRIORITY_FIFO0):
            return 0, index
        if action in (mram.FilterAction.FIFO1, mram.FilterAction.PRIORITY_FIFO1):
            return 1, index
        if action is not mram.FilterAction.REJECT:
            log.warning("%s: filter %d action %s is not modelled; frame dropped", self.name,
                        index, action.name)  # fmt: skip
        return None

    def _store(self, n: int, frame: CanFrame, filter_index: int | None) -> None:
        r = self.regs
        config, status = f"RXF{n}C", f"RXF{n}S"
        size = r.get_field(config, f"F{n}S")
        if size == 0:
            return  # no FIFO configured: the frame is not stored
        fill = r.get_field(status, f"F{n}FL")
        get, put = r.get_field(status, f"F{n}GI"), r.get_field(status, f"F{n}PI")
        if fill >= size:
            if not r.get_field(config, f"F{n}OM"):
                r.set_field(status, f"RF{n}L", 1)  # blocking mode: the new frame is lost
                self._raise(f"RF{n}L")
                return
            get = (get + 1) % size  # overwrite mode: the oldest element goes
            fill -= 1
        data_field = mram.data_field_size(r.get_field("RXESC", f"F{n}DS"))
        stored = frame
        if len(frame.data) > data_field:
            stored = CanFrame(frame.arbitration_id, frame.data[:data_field],
                              is_extended=frame.is_extended, is_fd=True, brs=frame.brs,
                              esi=frame.esi)  # fmt: skip
        offset = (r[config] & 0xFFFC) + put * mram.element_words(data_field) * 4
        mram.write_rx_element(self.ram, offset, stored, filter_index, frame.timestamp_ns // 1000)
        fill += 1
        self._set_fifo(n, fill, get, (put + 1) % size)
        self._raise(f"RF{n}N")
        watermark = r.get_field(config, f"F{n}WM")
        if watermark and fill == watermark:
            self._raise(f"RF{n}W")
        if fill == size:
            self._raise(f"RF{n}F")

    def _set_fifo(self, n: int, fill: int, get: int, put: int) -> None:
        r, status = self.regs, f"RXF{n}S"
        size = r.get_field(f"RXF{n}C", f"F{n}S")
        r.set_field(status, f"F{n}FL", fill)
        r.set_field(status, f"F{n}GI", get)
        r.set_field(status, f"F{n}PI", put)
        r.set_field(status, f"F{n}F", int(fill >= size > 0))

    def _acknowledge(self, n: int, index: int) -> None:
        """Firmware read up to element `index`: it and all before it are free again."""
        r, status = self.regs, f"RXF{n}S"
        size = r.get_field(f"RXF{n}C", f"F{n}S")
        fill, get = r.get_field(status, f"F{n}FL"), r.get_field(status, f"F{n}GI")
        if not size or not fill:
            return
        released = (index - get) % size + 1
        if released > fill:
            log.warning("%s: RXF%dA=%d acknowledges beyond the fill level", self.name, n, index)
            return
        put = r.get_field(status, f"F{n}PI")
        self._set_fifo(n, fill - released, (index + 1) % size, put)
