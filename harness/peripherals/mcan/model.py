"""Bosch M_CAN CAN FD controller: what a driver's message loop and its error handling use.

Modelled:
- CCCR.INIT/CCE configuration protection (DBTP, NBTP, TEST, filters, FIFO/buffer set-up and
  CCCR's mode bits only change with INIT = CCE = 1; CCE clears with INIT), FDOE/BRSE.
  Setting CCE resets HPMS, RXF0S, RXF1S, TXFQS, TXBRP, TXBTO, TXBCF and TXEFS and drops the
  pending transmit requests, as the M_CAN 3.2.1 user's manual says.
- Bit timing: NBTP/DBTP give the frame durations on the bus.
- Standard and extended ID filters (range, dual, classic mask; FIFO 0/1 or reject; XIDAM),
  the global filter for non-matching and remote frames.
- RX FIFO 0 and 1 (fill level, get/put index, watermark, full, acknowledge, blocking and
  overwrite mode, message lost).
- TX: dedicated buffers plus a TX FIFO or TX queue (TXBC.NDTB/TFQS/TFQM, TXFQS put/get
  index, free level = TFQS when empty, full), TXBAR/TXBRP/TXBTO, cancellation (TXBCR/TXBCF);
  arbitration inside the controller by lowest ID, then lowest buffer index (the FIFO takes
  part with its oldest element). TX event FIFO (EFC, message marker, watermark, full, lost,
  acknowledge).
- Test modes: external loopback (TEST.LBCK: its own frames are also received), internal
  loopback (LBCK + CCCR.MON: nothing on the bus, frames looped back after their duration),
  bus monitoring (CCCR.MON: receive only, no transmit requests).
- Fault confinement (TEC/REC per ISO 11898-1: +8 per transmit error, +1 per receive error,
  -1 per success; error warning at 96, error passive at 128 with ESI set on FD frames, bus-off
  above 255 with INIT set; recovery after INIT clears and 128 x 11 recessive bits), reported
  in ECR (TEC, REC, RP, CEL), PSR (LEC, DLEC, ACT, EP, EW, BO, RESI, RBRS, RFDF; LEC/DLEC
  read as "no change" and the R* flags clear when PSR is read) and IR.EW/EP/BO. Errors come
  from error frames on the bus (`CanBus.inject_errors`) or `transmit_error()` / `receive_error()`.
- IR/IE/ILS/ILE onto the two interrupt lines.
Message RAM is plain memory shared with the firmware; only the registers are MMIO. A TX
buffer is read when its request is added (TXBAR): firmware must not change a pending buffer,
as on the real IP. RX and TX event timestamps are virtual microseconds modulo 2**16.

Not modelled (declared, logged when touched): dedicated RX buffers, high-priority messages,
timestamp and timeout counters, transmitter delay compensation, restricted operation and
clock stop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from harness.clock import VirtualClock
from harness.errors import SimulationError
from harness.frames.can import CanFrame
from harness.frames.timing import format_bitrate, frame_bits
from harness.peripherals.base import IrqLine, Peripheral
from harness.peripherals.mcan import message_ram as mram
from harness.peripherals.mcan.regs import IR, MCAN_BLOCK

log = logging.getLogger(__name__)

# Fields and field groups used on the data path, compiled from the declaration once.
_reg = MCAN_BLOCK.register
_CCCR = _reg("CCCR")
INIT, CCE, TEST_MODE = _CCCR.field("INIT"), _CCCR.field("CCE"), _CCCR.field("TEST")
FDOE, BRSE = _CCCR.field("FDOE"), _CCCR.field("BRSE")
_CCCR_OFFSET = _CCCR.offset
PSR_ERRORS = _reg("PSR").codec("LEC", "DLEC", "RESI", "RBRS", "RFDF")  # "cleared" on read
PSR_LEC, PSR_DLEC = _reg("PSR").field("LEC"), _reg("PSR").field("DLEC")
PSR_RECEIVED = _reg("PSR").codec("RFDF", "RBRS", "RESI")
PSR_STATE = _reg("PSR").codec("EP", "EW", "BO")
ECR_COUNTERS = _reg("ECR").codec("TEC", "REC", "RP")
ECR_CEL = _reg("ECR").field("CEL")
RXFS = tuple(_reg(f"RXF{n}S").codec(f"F{n}FL", f"F{n}GI", f"F{n}PI", f"F{n}F", f"RF{n}L")
             for n in (0, 1))  # fmt: skip
RXFS_ACK = tuple(_reg(f"RXF{n}S").codec(f"F{n}FL", f"F{n}GI", f"F{n}F") for n in (0, 1))
RXFA = tuple(_reg(f"RXF{n}A").field(f"F{n}AI") for n in (0, 1))
TXEFA_EFAI = _reg("TXEFA").field("EFAI")
TXEFS = _reg("TXEFS").codec("EFFL", "EFGI", "EFPI", "EFF", "TEFL")
TXFQS = _reg("TXFQS").codec("TFFL", "TFGI", "TFQPI", "TFQF")
ILE_EINT0, ILE_EINT1 = _reg("ILE").field("EINT0"), _reg("ILE").field("EINT1")
GFC = _reg("GFC").codec("RRFE", "RRFS", "ANFE", "ANFS")
LEC_NONE, LEC_NO_CHANGE = 0, 7
ACT_SYNCHRONISING, ACT_IDLE = 0, 1
WARNING_LIMIT, PASSIVE_LIMIT, BUS_OFF_LIMIT = 96, 128, 255
RECOVERY_BITS = 128 * 11


@dataclass(frozen=True, slots=True)
class RxFifo:
    n: int
    start: int
    size: int
    watermark: int
    overwrite: bool
    data_field: int
    element_bytes: int


@dataclass(frozen=True, slots=True)
class Setup:
    """What the registers configured; fixed while the controller runs (INIT = 0)."""

    nominal_bitrate: int
    data_bitrate: int
    fd: bool
    brs: bool
    monitoring: bool  # CCCR.MON: no frames go onto the bus
    loopback: bool  # TEST.LBCK with CCCR.TEST
    fifos: tuple[RxFifo, RxFifo]
    tx_start: int
    tx_element_bytes: int
    dedicated: int  # TX buffers 0..dedicated-1
    fifo_queue: int  # then this many TX FIFO / queue elements
    queue_mode: bool
    event_start: int
    event_size: int
    event_watermark: int

    @property
    def tx_buffers(self) -> int:
        return self.dedicated + self.fifo_queue


@dataclass(frozen=True, slots=True)
class TxRequest:
    index: int
    requested_at: int  # ns of virtual time at its TXBAR
    frame: CanFrame
    marker: int
    event: bool  # store a TX event when sent


class Mcan(Peripheral):
    block = MCAN_BLOCK
    extra_state: ClassVar[tuple[str, ...]] = (
        "_pending", "_offered", "_looping", "_tec", "_rec", "_fifo_get", "_fifo_used",
    )  # fmt: skip

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
        # The bus's nominal and data bit rates, once attached: the bit timing must match.
        self.bus_rates: tuple[str, int, int] | None = None
        self._pending: dict[int, TxRequest] = {}
        self._offered: int | None = None  # the request offered to the bus's arbitration
        self._looping: int | None = None  # the request in internal loopback
        self._tec = self._rec = 0  # fault confinement counters (ECR shows them saturated)
        # TX FIFO: its oldest element (counted from its first buffer) and elements in use.
        # TXFQS is derived from these on every read.
        self._fifo_get = self._fifo_used = 0
        self._setup: Setup | None = None
        self._filters: dict[bool, tuple[bytes, list[mram.Filter]]] = {}
        self._loopback = self.deadline(self._loopback_done)
        self._recovery = self.deadline(self._recovered)
        r = self.regs
        r.on_read["PSR"] = self._read_psr
        r.on_read["TXFQS"] = lambda _i: self.txfqs
        r.on_write["TXBAR"] = self._write_txbar
        r.on_write["TXBCR"] = self._write_txbcr
        r.on_write["RXF0A"] = lambda _i, w, _n: self._acknowledge(0, RXFA[0].get(w))
        r.on_write["RXF1A"] = lambda _i, w, _n: self._acknowledge(1, RXFA[1].get(w))
        r.on_write["TXEFA"] = lambda _i, w, _n: self._acknowledge_events(TXEFA_EFAI.get(w))
        for reg in ("IR", "IE", "ILS", "ILE", "TXBTIE"):
            r.on_write[reg] = lambda _i, _w, _n: self.update_interrupts()
        # The configuration (write-protected as declared: MCAN_BLOCK's writable_when) is read
        # again after any accepted write to it.
        for declared in MCAN_BLOCK.registers:
            if declared.writable_when is not None:
                r.on_write[declared.name] = self._configuration_written

    # ---- register side ----

    def write(self, offset: int, size: int, value: int) -> None:
        if offset & ~3 != _CCCR_OFFSET:
            super().write(offset, size, value)
            return
        old = self.regs["CCCR"]
        super().write(offset, size, value)
        self._cccr_written(old)

    def _configuration_written(self, _i: int, _w: int, _n: int) -> None:
        self._setup = None

    def _cccr_written(self, old: int) -> None:
        r = self.regs
        if not r.field("CCCR", "INIT"):
            r.set_field("CCCR", "CCE", 0)  # CCE clears with INIT
        if not r.field("CCCR", "TEST"):
            r.reset_register("TEST")  # leaving test mode resets TEST
        new = r["CCCR"]
        self._setup = None
        if INIT.get(new) and CCE.get(new) and not CCE.get(old):
            self._configuration_reset()
        if INIT.get(old) and not INIT.get(new):
            self._left_init()
        if not INIT.get(old) and INIT.get(new):
            self._loopback.disarm()
            self.regs.set_field("PSR", "ACT", ACT_SYNCHRONISING)

    def _configuration_reset(self) -> None:
        """Setting CCE: the FIFO and transmit state registers reset, requests are dropped."""
        r = self.regs
        for name in ("HPMS", "RXF0S", "RXF1S", "TXBRP", "TXBTO", "TXBCF", "TXEFS"):
            r.reset_register(name)
        self._pending = {}
        self._offered = self._looping = None
        self._loopback.disarm()
        self._fifo_get = self._fifo_used = 0

    def _left_init(self) -> None:
        s = self.setup
        self._check_bit_timing(s)
        if self.regs.get_field("PSR", "BO"):
            bits = RECOVERY_BITS * self.clock.hz // s.nominal_bitrate
            self._recovery.arm_in(bits)  # bus-off recovery: 128 x 11 recessive bits
            return
        self.regs.set_field("PSR", "ACT", ACT_IDLE)
        self._wake_bus()

    def _check_bit_timing(self, s: Setup) -> None:
        """A controller whose bit timing differs from its bus's would not communicate on a
        real bus (every frame an error): stop with the two sets of rates, never run on."""
        if self.bus_rates is None or s.monitoring:
            return
        bus, nominal, data = self.bus_rates
        wrong = not _close(s.nominal_bitrate, nominal)
        if s.fd and s.brs and nominal != data:
            wrong = wrong or not _close(s.data_bitrate, data)
        if wrong:
            ours = f"{format_bitrate(s.nominal_bitrate)} (data {format_bitrate(s.data_bitrate)})"
            theirs = f"{format_bitrate(nominal)} (data {format_bitrate(data)})"
            raise SimulationError(
                f"{self.name} left INIT with bit timing for {ours}, but {bus} runs at {theirs}: "
                "on a real bus it could not communicate. Make the firmware's NBTP/DBTP and the "
                "bus's rates agree"
            )

    @property
    def setup(self) -> Setup:
        if self._setup is None:
            self._setup = self._read_setup()
        return self._setup

    def _read_setup(self) -> Setup:
        r = self.regs
        get = r.get_field
        nominal_tq = get("NBTP", "NTSEG1") + get("NBTP", "NTSEG2") + 3
        data_tq = get("DBTP", "DTSEG1") + get("DBTP", "DTSEG2") + 3

        def fifo(n: int) -> RxFifo:
            data_field = mram.data_field_size(get("RXESC", f"F{n}DS"))
            return RxFifo(n, 4 * get(f"RXF{n}C", f"F{n}SA"), get(f"RXF{n}C", f"F{n}S"),
                          get(f"RXF{n}C", f"F{n}WM"), bool(get(f"RXF{n}C", f"F{n}OM")),
                          data_field, mram.element_words(data_field) * 4)  # fmt: skip

        dedicated = min(get("TXBC", "NDTB"), 32)
        return Setup(
            nominal_bitrate=self.can_clock_hz // ((get("NBTP", "NBRP") + 1) * nominal_tq),
            data_bitrate=self.can_clock_hz // ((get("DBTP", "DBRP") + 1) * data_tq),
            fd=bool(get("CCCR", "FDOE")),
            brs=bool(get("CCCR", "BRSE")),
            monitoring=bool(get("CCCR", "MON")),
            loopback=bool(get("CCCR", "TEST") and get("TEST", "LBCK")),
            fifos=(fifo(0), fifo(1)),
            tx_start=4 * get("TXBC", "TBSA"),
            tx_element_bytes=mram.element_words(mram.data_field_size(get("TXESC", "TBDS"))) * 4,
            dedicated=dedicated,
            fifo_queue=min(get("TXBC", "TFQS"), 32 - dedicated),
            queue_mode=bool(get("TXBC", "TFQM")),
            event_start=4 * get("TXEFC", "EFSA"),
            event_size=min(get("TXEFC", "EFS"), 32),
            event_watermark=get("TXEFC", "EFWM"),
        )

    def nominal_bitrate(self) -> int:
        return self.setup.nominal_bitrate

    def data_bitrate(self) -> int:
        return self.setup.data_bitrate

    @property
    def initialising(self) -> bool:
        return bool(INIT.get(self.regs["CCCR"]))

    def _on_bus(self) -> bool:
        """Taking part in bus traffic: out of INIT and not recovering from bus-off."""
        return not INIT.get(self.regs["CCCR"]) and self._recovery.at is None

    def update_interrupts(self) -> None:
        r = self.regs
        active = r["IR"] & r["IE"]  # IR, IE and ILS have the same bit layout
        select, enable = r["ILS"], r["ILE"]
        self.lines[0].set(bool(active & ~select) and bool(ILE_EINT0.get(enable)))
        self.lines[1].set(bool(active & select) and bool(ILE_EINT1.get(enable)))

    def _read_psr(self, _index: int) -> int:
        r = self.regs
        value = r["PSR"]
        # Reading PSR: LEC/DLEC become "no change", RESI/RBRS/RFDF clear.
        r["PSR"] = PSR_ERRORS.replace(value, LEC_NO_CHANGE, LEC_NO_CHANGE, 0, 0, 0)
        return value

    def reset(self) -> None:
        super().reset()
        self._pending = {}
        self._offered = self._looping = None
        self._tec = self._rec = 0
        self._fifo_get = self._fifo_used = 0
        self._setup = None

    def restore(self, state: Any) -> None:
        super().restore(state)
        self._setup = None

    # ---- transmit ----

    def _tx_offset(self, index: int) -> int:
        s = self.setup
        return s.tx_start + index * s.tx_element_bytes

    def _write_txbar(self, _i: int, written: int, _new: int) -> None:
        r = self.regs
        r["TXBAR"] = 0  # the add request is taken at once
        s = self.setup
        if s.monitoring and not s.loopback:
            log.warning("%s: TXBAR ignored in bus monitoring mode", self.name)
            return
        valid = (1 << s.tx_buffers) - 1
        if written & ~valid:
            log.warning("%s: TXBAR bits beyond the %d configured buffers ignored", self.name,
                        s.tx_buffers)  # fmt: skip
        requested = written & valid & ~r["TXBRP"]
        if s.fifo_queue and not s.queue_mode:
            requested = self._fifo_requests(requested, s)
        now = self.clock.ns
        bits = requested
        while bits:
            index = (bits & -bits).bit_length() - 1
            bits &= bits - 1
            frame, marker, event = mram.read_tx_element(self.ram, self._tx_offset(index))
            self._pending[index] = TxRequest(index, now, self._as_sent(frame), marker, event)
        r["TXBRP"] |= requested
        r["TXBTO"] &= ~requested
        r["TXBCF"] &= ~requested
        if requested:
            self._wake_bus()

    # The TX FIFO: elements dedicated..dedicated+fifo_queue-1, sent oldest first from the get
    # index; the put index follows from the get index and the fill.

    def _fifo_state(self, s: Setup) -> tuple[int, int]:
        """(get index, elements in use) of the TX FIFO."""
        return s.dedicated + self._fifo_get % max(s.fifo_queue, 1), self._fifo_used

    def _set_fifo_state(self, s: Setup, get: int, used: int) -> None:
        self._fifo_get, self._fifo_used = get - s.dedicated, used

    @property
    def txfqs(self) -> int:
        """TXFQS: in FIFO mode free level (TFQS when empty), get and put index, full; in
        queue mode the first free queue buffer, full."""
        s = self.setup
        if not s.fifo_queue:
            return 0
        if s.queue_mode:
            pending = self.regs["TXBRP"]
            idle = [i for i in range(s.dedicated, s.tx_buffers) if not pending >> i & 1]
            return TXFQS.pack(0, 0, idle[0] if idle else 0, int(not idle))
        get, used = self._fifo_state(s)
        put = s.dedicated + (get - s.dedicated + used) % s.fifo_queue
        free = s.fifo_queue - used
        return TXFQS.pack(free, get, put, int(free == 0))

    def _fifo_requests(self, requested: int, s: Setup) -> int:
        """In FIFO mode only the put index may be requested; it then moves on."""
        fifo_bits = ((1 << s.fifo_queue) - 1) << s.dedicated
        for_fifo = requested & fifo_bits
        if not for_fifo:
            return requested
        get, used = self._fifo_state(s)
        put = s.dedicated + (get - s.dedicated + used) % s.fifo_queue
        accepted = for_fifo & (1 << put) if used < s.fifo_queue else 0
        if for_fifo != accepted:
            log.warning("%s: TX FIFO requests 0x%08X ignored: only the put index %d may be "
                        "requested, when the FIFO is not full", self.name, for_fifo & ~accepted,
                        put)  # fmt: skip
        if accepted:
            self._set_fifo_state(s, get, used + 1)
        return (requested & ~fifo_bits) | accepted

    def _fifo_release(self, s: Setup) -> bool:
        """Move the get index past elements no longer pending; True if the FIFO is empty."""
        get, used = self._fifo_state(s)
        while used and get not in self._pending:
            get = s.dedicated + (get - s.dedicated + 1) % s.fifo_queue
            used -= 1
        self._set_fifo_state(s, get, used)
        return used == 0

    def _as_sent(self, frame: CanFrame) -> CanFrame:
        cccr = self.regs["CCCR"]
        if frame.is_fd and not FDOE.get(cccr):  # FD disabled: sent as a classic frame
            return CanFrame(frame.arbitration_id, frame.data[:8], is_extended=frame.is_extended)
        if frame.brs and not BRSE.get(cccr):  # BRS disabled: no bit-rate switch
            return CanFrame(frame.arbitration_id, frame.data, is_extended=frame.is_extended,
                            is_fd=True, esi=frame.esi)  # fmt: skip
        return frame

    def _write_txbcr(self, _i: int, written: int, _new: int) -> None:
        r = self.regs
        r["TXBCR"] = 0
        cancelled = written & r["TXBRP"]
        for busy in (self._offered, self._looping):
            if busy is not None:
                cancelled &= ~(1 << busy)  # a frame being sent completes normally
        for index in range(32):
            if cancelled >> index & 1:
                del self._pending[index]
        r["TXBRP"] &= ~cancelled
        r["TXBCF"] |= cancelled
        s = self.setup
        if s.fifo_queue and not s.queue_mode:
            self._fifo_release(s)
        if cancelled & r["TXBCIE"]:
            r["IR"] |= IR["TCF"]
            self.update_interrupts()

    def _wake_bus(self) -> None:
        if not self._pending or not self._on_bus():
            return
        if self.setup.monitoring:  # internal loopback: the frames never reach the bus
            if self._loopback.at is None:
                self._start_loopback()
            return
        for request in self.bus_request:
            request(self.clock.ns)

    def pending_since(self) -> int | None:
        if not self._on_bus() or self.setup.monitoring:
            return None
        return min((p.requested_at for p in self._pending.values()), default=None)

    def _candidates(self, now_ns: int) -> list[TxRequest]:
        s = self.setup
        ready = [p for p in self._pending.values() if p.requested_at <= now_ns]
        if s.fifo_queue and not s.queue_mode:  # of the FIFO, only its oldest element
            oldest = self._fifo_state(s)[0]
            ready = [p for p in ready if p.index < s.dedicated or p.index == oldest]
        return ready

    def offer(self, now_ns: int) -> CanFrame | None:
        """The pending request with the lowest ID (then the lowest buffer index) goes first."""
        self._offered = None
        if not self._pending or not self._on_bus() or self.setup.monitoring:
            return None
        ready = self._candidates(now_ns)
        if not ready:
            return None
        best = min(ready, key=lambda p: (p.frame.arbitration_key(), p.index))
        self._offered = best.index
        frame = best.frame
        if frame.is_fd and not frame.esi and self.regs.get_field("PSR", "EP"):
            frame = CanFrame(frame.arbitration_id, frame.data, frame.is_extended, True, frame.brs,
                             esi=True)  # fmt: skip  # error-passive nodes send ESI = 1
        return frame

    def transmitted(self, frame: CanFrame) -> None:
        index = self._offered
        self._offered = None
        if index is not None:
            self._sent(index, frame)

    def _sent(self, index: int, frame: CanFrame) -> None:
        request = self._pending.pop(index)
        bit = 1 << index
        r = self.regs
        r["TXBRP"] &= ~bit
        r["TXBTO"] |= bit
        self._count_success(frame)
        raised = IR["TC"] if r["TXBTIE"] & bit else 0
        s = self.setup
        if s.dedicated <= index and s.fifo_queue and not s.queue_mode and self._fifo_release(s):
            raised |= IR["TFE"]
        if request.event:
            raised |= self._store_event(frame, request.marker)
        r["IR"] |= raised
        if s.loopback:
            self._accept(frame)  # loopback: its own frame is received too
        self.update_interrupts()

    def _store_event(self, frame: CanFrame, marker: int) -> int:
        """Store a TX event element; returns the interrupt flags it raises."""
        s, r = self.setup, self.regs
        if not s.event_size:
            return 0
        status = r["TXEFS"]
        fill, get, put, _full, lost = TXEFS.unpack(status)
        if fill >= s.event_size:
            r.set_field("TXEFS", "TEFL", 1)  # the event is lost
            return IR["TEFL"]
        mram.write_tx_event(self.ram, s.event_start + put * mram.TX_EVENT_BYTES, frame, marker,
                            frame.timestamp_ns // 1000)  # fmt: skip
        fill += 1
        self._set_event_status(fill, get, (put + 1) % s.event_size, lost)
        raised = IR["TEFN"]
        if s.event_watermark and fill == s.event_watermark:
            raised |= IR["TEFW"]
        if fill == s.event_size:
            raised |= IR["TEFF"]
        return raised

    def _set_event_status(self, fill: int, get: int, put: int, lost: int) -> None:
        full = int(fill >= self.setup.event_size > 0)
        self.regs["TXEFS"] = TXEFS.pack(fill, get, put, full, lost)

    def _acknowledge_events(self, index: int) -> None:
        s = self.setup
        fill, get, put, _full, lost = TXEFS.unpack(self.regs["TXEFS"])
        if not s.event_size or not fill:
            return
        released = (index - get) % s.event_size + 1
        if released > fill:
            log.warning("%s: TXEFA=%d acknowledges beyond the fill level", self.name, index)
            return
        self._set_event_status(fill - released, (index + 1) % s.event_size, put, lost)

    # ---- internal loopback: frames take their time but never reach the bus ----

    def _start_loopback(self) -> None:
        ready = self._candidates(self.clock.ns)
        if not ready:
            return
        best = min(ready, key=lambda p: (p.frame.arbitration_key(), p.index))
        self._looping = best.index
        s = self.setup
        duration = frame_bits(best.frame).duration_ns(
            s.nominal_bitrate, s.data_bitrate if best.frame.brs else None
        )
        self._loopback.arm_in(-(-duration * self.clock.hz // 1_000_000_000))

    def _loopback_done(self) -> None:
        index, self._looping = self._looping, None
        if index is not None and index in self._pending:
            frame = self._pending[index].frame.stamped(self.clock.ns, self.name)
            self._sent(index, frame)  # LBCK is set: this also receives it
        self._wake_bus()

    # ---- receive ----

    def receive(self, frame: CanFrame) -> None:
        """A frame from the bus."""
        if not self._on_bus():
            return
        s = self.setup
        if s.monitoring and s.loopback:
            return  # internal loopback: the bus is not heard
        self._count_success(frame, received=True)
        self._accept(frame)
        self.update_interrupts()

    def _accept(self, frame: CanFrame) -> None:
        """Filter a received frame into its RX FIFO."""
        s = self.setup
        if frame.is_fd and not s.fd:
            return
        destination = self._filter(frame)
        if destination is not None:
            self.regs["IR"] |= self._store(s.fifos[destination[0]], frame, destination[1])

    def _filter(self, frame: CanFrame) -> tuple[int, int | None] | None:
        r = self.regs
        reject_remote_ext, reject_remote_std, anfe, anfs = GFC.unpack(r["GFC"])
        if frame.is_remote and (reject_remote_ext if frame.is_extended else reject_remote_std):
            return None  # RRFE / RRFS: reject remote frames
        if frame.is_extended:
            ident = frame.arbitration_id & r["XIDAM"]  # XIDAM is one field, EIDM
            non_matching = anfe
        else:
            ident = frame.arbitration_id
            non_matching = anfs
        match = mram.first_match(self._filter_list(frame.is_extended), ident)
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

    def _filter_list(self, extended: bool) -> list[mram.Filter]:
        """The filter elements, decoded again only when their message RAM bytes change."""
        r = self.regs
        if extended:
            count, start, size = r.field("XIDFC", "LSE"), 4 * r.field("XIDFC", "FLESA"), 8
        else:
            count, start, size = r.field("SIDFC", "LSS"), 4 * r.field("SIDFC", "FLSSA"), 4
        raw = bytes(self.ram[start : start + count * size])
        cached = self._filters.get(extended)
        if cached is not None and cached[0] == raw:
            return cached[1]
        read = mram.read_extended_filter if extended else mram.read_standard_filter
        filters = [read(self.ram, start + size * i) for i in range(count)]
        self._filters[extended] = (raw, filters)
        return filters

    def _store(self, fifo: RxFifo, frame: CanFrame, filter_index: int | None) -> int:
        """Put a frame into RX FIFO `fifo`; returns the interrupt flags it raises."""
        n, size = fifo.n, fifo.size
        if size == 0:
            return 0  # no FIFO configured: the frame is not stored
        r, status_reg, codec = self.regs, f"RXF{n}S", RXFS[n]
        fill, get, put, _full, lost = codec.unpack(r[status_reg])
        if fill >= size:
            if not fifo.overwrite:
                r.set_field(status_reg, f"RF{n}L", 1)  # blocking mode: the new frame is lost
                return IR[f"RF{n}L"]
            get = (get + 1) % size  # overwrite mode: the oldest element goes
            fill -= 1
        stored = frame
        if len(frame.data) > fifo.data_field:
            stored = CanFrame(frame.arbitration_id, frame.data[: fifo.data_field],
                              is_extended=frame.is_extended, is_fd=True, brs=frame.brs,
                              esi=frame.esi)  # fmt: skip
        offset = fifo.start + put * fifo.element_bytes
        mram.write_rx_element(self.ram, offset, stored, filter_index, frame.timestamp_ns // 1000)
        fill += 1
        r[status_reg] = codec.pack(fill, get, (put + 1) % size, int(fill >= size), lost)
        raised = IR[f"RF{n}N"]
        if fifo.watermark and fill == fifo.watermark:
            raised |= IR[f"RF{n}W"]
        if fill == size:
            raised |= IR[f"RF{n}F"]
        return raised

    def _acknowledge(self, n: int, index: int) -> None:
        """Firmware read up to element `index`: it and all before it are free again."""
        r, status_reg = self.regs, f"RXF{n}S"
        size = self.setup.fifos[n].size
        status = r[status_reg]
        fill, get, _put, _full, _lost = RXFS[n].unpack(status)
        if not size or not fill:
            return
        released = (index - get) % size + 1
        if released > fill:
            log.warning("%s: RXF%dA=%d acknowledges beyond the fill level", self.name, n, index)
            return
        fill -= released
        r[status_reg] = RXFS_ACK[n].replace(status, fill, (index + 1) % size, 0)

    # ---- fault confinement ----

    def bus_error(self, transmitting: bool) -> None:
        """An error frame on the bus: our frame failed (it stays pending and is sent again) or
        we saw a frame fail."""
        if transmitting:
            self._offered = None
            self.transmit_error()
        elif self._on_bus():
            self.receive_error()

    def transmit_error(self) -> None:
        """A transmit error (bit, stuff, form, CRC or ACK error while sending): TEC += 8."""
        if self.regs.get_field("PSR", "BO"):
            return
        self._tec += 8
        self._log_error()

    def receive_error(self) -> None:
        """A receive error seen by this node: REC += 1."""
        self._rec = min(self._rec + 1, 255)
        self._log_error()

    def _log_error(self) -> None:
        r = self.regs
        cel = min(r.field("ECR", "CEL") + 1, 255)  # CEL counts errors, cleared on read
        r.set_field("ECR", "CEL", cel)
        if self._tec > BUS_OFF_LIMIT:
            self._bus_off()
        else:
            self._show_counters()

    def _count_success(self, frame: CanFrame, received: bool = False) -> None:
        if received:  # ISO 11898-1: from error passive back to a value between 119 and 127
            self._rec = 120 if self._rec >= PASSIVE_LIMIT else max(self._rec - 1, 0)
        else:
            self._tec = max(self._tec - 1, 0)
        r = self.regs
        psr = r["PSR"] & ~PSR_LEC.mask  # LEC: no error
        if frame.brs:
            psr &= ~PSR_DLEC.mask
        if received and frame.is_fd:  # RFDF, RBRS, RESI of the last received FD frame
            psr |= PSR_RECEIVED.pack(1, int(frame.brs), int(frame.esi))
        r["PSR"] = psr
        if self._tec or self._rec or r["ECR"] & ECR_COUNTERS.mask:
            self._show_counters()

    def _show_counters(self) -> None:
        r = self.regs
        rx_passive = self._rec >= PASSIVE_LIMIT
        r["ECR"] = ECR_COUNTERS.replace(r["ECR"], min(self._tec, 255), min(self._rec, 127),
                                        int(rx_passive))  # fmt: skip
        passive = self._tec >= PASSIVE_LIMIT or rx_passive
        warning = self._tec >= WARNING_LIMIT or self._rec >= WARNING_LIMIT
        self._set_status(passive=passive, warning=warning, bus_off=False)

    def _set_status(self, passive: bool, warning: bool, bus_off: bool) -> None:
        r = self.regs
        psr = r["PSR"]
        new = PSR_STATE.replace(psr, int(passive), int(warning), int(bus_off))
        ep, ew, bo = PSR_STATE.unpack(psr ^ new)  # the ones that changed
        r["PSR"] = new
        raised = (IR["EP"] if ep else 0) | (IR["EW"] if ew else 0) | (IR["BO"] if bo else 0)
        if raised:
            r["IR"] |= raised
            self.update_interrupts()

    def _bus_off(self) -> None:
        """TEC above 255: off the bus with INIT set; the firmware restarts by clearing INIT."""
        self._show_counters()
        self.regs.set_field("CCCR", "INIT", 1)
        self._offered = self._looping = None
        self._loopback.disarm()
        self._set_status(passive=True, warning=True, bus_off=True)

    def _recovered(self) -> None:
        self._tec = self._rec = 0
        self._show_counters()
        self.regs.set_field("PSR", "ACT", ACT_IDLE)
        self._wake_bus()


def _close(configured: int, bus: int) -> bool:
    """Within the 0.5 % a CAN bit timing may be off (prescaler rounding, oscillators)."""
    return abs(configured - bus) * 200 <= bus
